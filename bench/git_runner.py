"""What the hardened git runner (orchestrator_service/git/repo.py) costs, as ratios against the same
git commands run bare (one process each, the same environment, no config read first).

    python -m bench.git_runner [--calls 200]

The runner reads the repository's config names before each command (`git config --list`), so a
command costs about two git processes; a merge in the orchestrator's worktree is several commands.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator_service.git.repo import git, hardened_environment
from orchestrator_service.git.workspace import Workspace
from tests.e2e.cluster import make_git_repo


def _median_ms(call: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        ws = Workspace(root / "workspace")
        ws.sync("p", str(make_git_repo(root / "user")))
        repo = ws.repo("p")
        env = hardened_environment()
        bare = _median_ms(
            lambda: subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, check=True),
            calls,
        )
        runner = _median_ms(lambda: git(repo, "rev-parse", "HEAD"), calls)
        ws.ensure_branch("p", "target", "refs/remotes/origin/main")
        merge = _median_ms(lambda: ws.merge("p", "target", "target", "noop merge"), max(calls // 10, 5))
        print(f"bare git rev-parse: {bare:.2f} ms (1.00x)")
        print(f"runner git rev-parse: {runner:.2f} ms ({runner / bare:.2f}x)")
        print(f"Workspace.merge (already merged): {merge:.2f} ms ({merge / bare:.2f}x a bare git command)")


if __name__ == "__main__":
    main()
