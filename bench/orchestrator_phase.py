"""Wall time of one phase of N tasks whose agents exit at once, and store RPCs per dispatch.

    python -m bench.orchestrator_phase [--tasks 50] [--max-agents 4 8]

Both services run as processes; the store logs every request at debug level, with its caller, so
the RPCs the orchestrator makes (not the bench's own polling) are counted from the store's own log,
in all and by method. The baseline of the same run is the time to start the same scripted agent N
times one after another, with no orchestrator at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.scale_out import BY_ORCHESTRATOR, RPC
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import phase_pb2
from tests.e2e.cluster import SCRIPTED, Cluster, make_git_repo, wait_for


def _baseline(tasks: int, root: Path) -> float:
    """N sequential runs of the scripted agent, doing the same commit, without cw."""
    repo = make_git_repo(root / "baseline-repo")
    start = time.perf_counter()
    for index in range(tasks):
        run_scripted_agent(root, index, repo.parent)
    return time.perf_counter() - start


def run_scripted_agent(state: Path, index: int, workdir: Path) -> None:
    """The scripted agent run by hand, as cw would run it for task `t<index>`: it writes and
    commits one file in each project directory under `workdir`."""
    agent = start_scripted_agent(state, index, workdir)
    if agent.wait() != 0:
        raise subprocess.CalledProcessError(agent.returncode, SCRIPTED)


def start_scripted_agent(state: Path, index: int, workdir: Path) -> subprocess.Popen[bytes]:
    """`run_scripted_agent`, started: the process."""
    prompt = state / "prompt.md"
    prompt.write_text(f'script: {{"files": {{"f{index}.txt": "x"}}}}\n')
    env = {
        **os.environ,
        "CW_PROMPT_FILE": str(prompt),
        "CW_SIGNAL_FILE": str(state / "signal.json"),
        "CW_SESSION_ID": "s",
        "CW_AGENT_NAME": "a",
        "CW_TASK_ID": f"t{index}",
        "CW_INITIATIVE_ID": "i",
        "CW_AGENT_ID": f"agent-{index}",
        "CW_TEST_STATE_DIR": str(state),
        "CW_WORKTREES": json.dumps({repo.name: str(repo) for repo in workdir.iterdir() if (repo / ".git").exists()}),
        **{"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x"},
    }
    return subprocess.Popen(
        SCRIPTED.split(), cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def orchestrator_rpcs(log: Path) -> Counter[str]:
    """The store RPCs the orchestrator made, by method, from the store's debug log."""
    counted: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        at = line.find(RPC)
        if at >= 0 and line.endswith(BY_ORCHESTRATOR):
            counted[line[at + len(RPC) :].split()[0]] += 1
    return counted


def _phase_run(tasks: int, max_agents: int, root: Path) -> tuple[float, Counter[str]]:
    root.mkdir(parents=True)
    # At debug level the store logs every request it serves: one line per RPC.
    c = Cluster(root, [f"scripted={SCRIPTED}"], max_agents, store_log_level="DEBUG")
    try:
        c.start_store()
        c.start_orchestrator()
        phase = c.phase(c.initiative(f"Bench {max_agents}", c.project()), "P")
        for index in range(tasks):
            c.task(phase, f"t{index}", files={f"f{index}.txt": str(index)})
        before = orchestrator_rpcs(root / "store.log")
        start = time.perf_counter()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        wait_for(
            "the phase to finish",
            lambda: c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW,
            timeout=600,
            interval=0.05,
        )
        elapsed = time.perf_counter() - start
        return elapsed, orchestrator_rpcs(root / "store.log") - before
    finally:
        c.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--max-agents", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        baseline = _baseline(args.tasks, root / "baseline")
        print(f"baseline: {args.tasks} scripted agents run one after another without cw: {baseline:.2f}s")
        for max_agents in args.max_agents:
            elapsed, rpcs = _phase_run(args.tasks, max_agents, root / f"run-{max_agents}")
            print(
                f"--max-agents {max_agents}: phase of {args.tasks} tasks in {elapsed:.2f}s "
                f"({elapsed / baseline:.2f}x baseline), {rpcs.total() / args.tasks:.1f} store RPCs of the "
                "orchestrator per dispatched task"
            )
            for method, count in rpcs.most_common():
                print(f"  {count / args.tasks:5.2f} per task  {method}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
