"""What a checkpoint costs when a run ends, against what the agent's own commit costs.

    python -m bench.checkpoint [--files 2000] [--rounds 15]

A project of N files, two worktrees of it on two task branches. Each round changes the same files
in both (a few edited, one added, one deleted); in one, cw's checkpoint commits them
(git/checkpoints.py: its own index read from the branch, `git status`, `git add`, a commit); in the
other, the agent's plain `git add -A && git commit`, the baseline of the same round. Then each
worktree again with nothing changed: the checkpoint every run that committed its work pays, against
a plain `git status`. Medians of the rounds, printed as ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator_service.git.checkpoints import Identity
from orchestrator_service.git.workspace import Workspace, task_branch
from tests.e2e.cluster import make_git_repo

AGENT = Identity("bench-agent", "bench-agent@agents.cw.invalid")
PLAIN = ["git", "-c", "user.name=bench", "-c", "user.email=bench@x"]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _change(worktree: Path, round_number: int) -> None:
    for index in range(5):
        (worktree / f"f{index * 97}.txt").write_text(f"round {round_number}\n")
    (worktree / f"new-{round_number}.txt").write_text("new\n")
    (worktree / f"f{1000 + round_number}.txt").unlink(missing_ok=True)


def _plain_commit(worktree: Path) -> None:
    subprocess.run([*PLAIN, "add", "-A"], cwd=worktree, check=True)
    subprocess.run([*PLAIN, "commit", "-q", "-m", "round"], cwd=worktree, check=True)


def run(files: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-checkpoint-") as scratch:
        root = Path(scratch)
        origin = make_git_repo(root / "origin", {f"f{index}.txt": f"{index}\n" for index in range(files)})
        ws = Workspace(root / "workspace")
        ws.sync("p", str(origin))
        ws.ensure_branch("p", "main", "refs/remotes/origin/main")
        worktrees = {}
        for name in ("checkpointed", "committed"):
            ws.prepare_task_branch("p", task_branch(name), "main")
            worktrees[name] = ws.task_dir(name) / "app"
            ws.add_worktree("p", worktrees[name], task_branch(name))
        where, branch = worktrees["checkpointed"], task_branch("checkpointed")
        status = [*PLAIN, "status", "--porcelain"]

        def checkpoint() -> object:
            return ws.checkpoint("p", where, branch)

        def plain_status() -> object:
            return subprocess.run(status, cwd=worktrees["committed"], check=True, capture_output=True)

        changed: dict[str, list[float]] = {"checkpoint": [], "commit": [], "clean checkpoint": [], "status": []}
        for number in range(rounds):
            for worktree in worktrees.values():
                _change(worktree, number)
            changed["checkpoint"].append(_timed(checkpoint))
            changed["commit"].append(_timed(lambda: _plain_commit(worktrees["committed"])))
            changed["clean checkpoint"].append(_timed(checkpoint))
            changed["status"].append(_timed(plain_status))
        return {name: statistics.median(times) for name, times in changed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    medians = run(args.files, args.rounds)
    print(f"checkpoint of a worktree of {args.files} files, {args.rounds} rounds (medians)")
    ratio = medians["checkpoint"] / medians["commit"]
    print(f"  changed files: checkpoint / the agent's git add -A + commit = {ratio:.2f}x")
    clean = medians["clean checkpoint"] / medians["status"]
    print(f"  nothing left:  checkpoint / git status = {clean:.2f}x")
    print(
        f"  (the agent's commit took {medians['commit'] * 1000:.1f} ms, git status {medians['status'] * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
