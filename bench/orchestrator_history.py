"""Does the orchestrator's cost follow live work, not history? Ratios measured in one run.

    python -m bench.orchestrator_history [--tasks 30] [--history 10000] [--rounds 2]

1. A phase of `--tasks` instant tasks on an empty store vs on a store already holding `--history`
   finished tasks (in other, finished initiatives, with their agents and events).
2. Orchestrator restart until its first dispatch, on the same two stores.
3. Store RPCs per task, all-in, counted from the store's own debug log (one line per request).
4. A phase of 50 instant tasks at --max-agents 4 vs a plain script doing, for each task one after
   another, the same git worktree add, agent run and merge without cw.

History is seeded straight into the SQLite file before the store starts (the store's own models
and migrations), so seeding 10,000 tasks takes seconds, not the minutes 30,000 RPCs would.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import field_mask_pb2
from sqlalchemy.orm import Session

from bench.orchestrator_phase import run_scripted_agent
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2, phase_pb2
from store_service.db import migrate
from store_service.db.engine import create_writer_engine
from store_service.db.models import Agent, Event, Initiative, Phase, Task
from tests.e2e.cluster import SCRIPTED, Cluster, make_git_repo, wait_for

RPC_LINE = "rpc /cw.store.v1."


def seed_history(db_path: Path, tasks: int) -> None:
    """`tasks` finished tasks, 50 to a phase, 4 phases to an initiative, each with its agent and
    two events, all COMPLETED and merged."""
    engine = create_writer_engine(db_path)
    migrate.upgrade(engine)
    now = datetime.now(UTC).replace(tzinfo=None)
    # Events are numbered by whoever writes them (the store numbers its own in the write transaction).
    sequences = itertools.count(1)
    with Session(engine) as session:
        made = 0
        while made < tasks:
            initiative = Initiative(name=f"history {made}", status="completed", branch=f"cw/history-{made}")
            session.add(initiative)
            session.flush()
            for _ in range(4):
                phase = Phase(initiative_id=initiative.id, name="old", status="completed", merge_base="0" * 40)
                session.add(phase)
                session.flush()
                for _ in range(min(50, tasks - made)):
                    task = Task(
                        phase_id=phase.id,
                        initiative_id=initiative.id,
                        name=f"old task {made}",
                        status="completed",
                        summary="done long ago",
                        merge_time=now,
                    )
                    session.add(task)
                    session.flush()
                    session.add(
                        Agent(
                            name=f"old-agent-{made}",
                            task_id=task.id,
                            initiative_id=initiative.id,
                            worktree_id="-",
                            status="stopped",
                            outcome="done",
                        )
                    )
                    session.add_all(
                        Event(
                            sequence=next(sequences),
                            type=kind,
                            task_id=task.id,
                            initiative_id=initiative.id,
                            details={},
                        )
                        for kind in ("task:dispatched", "task:completed")
                    )
                    made += 1
            session.commit()
    engine.dispose()


def _rpcs(root: Path) -> int:
    """Calls the orchestrator made: the store logs each request with its caller at debug level."""
    return sum(
        RPC_LINE in line and line.endswith(" by orchestrator") for line in (root / "store.log").read_text().splitlines()
    )


def phase_run(root: Path, tasks: int, history: int, max_agents: int = 4) -> tuple[float, float, float]:
    """(phase seconds, store RPCs per task, restart-to-first-dispatch seconds)."""
    root.mkdir(parents=True)
    if history:
        seed_history(root / "store.db", history)
    c = Cluster(root, [f"scripted={SCRIPTED}"], max_agents, store_log_level="DEBUG")
    try:
        c.start_store()
        c.start_orchestrator()
        project = c.project()
        phase = c.phase(c.initiative(f"Bench {history}", project), "P")
        for index in range(tasks):
            c.task(phase, f"t{index}", files={f"f{index}.txt": str(index)})
        before = _rpcs(root)
        start = time.perf_counter()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        wait_for("the phase", lambda: c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW, 900, 0.05)
        elapsed = time.perf_counter() - start
        per_task = (_rpcs(root) - before) / tasks
        restart = _restart_to_first_dispatch(c, project)
        return elapsed, per_task, restart
    finally:
        c.close()


def _restart_to_first_dispatch(c: Cluster, project: object) -> float:
    assert c.orchestrator is not None
    c.orchestrator.kill()
    phase = c.phase(c.initiative("After restart", project), "P")  # type: ignore[arg-type]
    c.task(phase, "first")
    c.api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(
            phase=phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_APPROVED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )
    head = c.api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence
    start = time.perf_counter()
    c.start_orchestrator()

    def spawned() -> bool:
        page = c.api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=head, types=["agent:spawned"]))
        return bool(page.events)

    wait_for("the first dispatch after a restart", spawned, 300, 0.02)
    return time.perf_counter() - start


def plain_script(root: Path, tasks: int) -> float:
    """What cw does per task, by hand and one task at a time: worktree, agent, merge."""
    repo = make_git_repo(root / "repo")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "branch", "phase"], cwd=repo, check=True)
    start = time.perf_counter()
    for index in range(tasks):
        work = root / "work" / f"t{index}"
        subprocess.run([*git, "branch", f"t{index}", "phase"], cwd=repo, check=True)
        subprocess.run([*git, "worktree", "add", "-q", str(work / "app"), f"t{index}"], cwd=repo, check=True)
        run_scripted_agent(work, index, work)
        subprocess.run([*git, "checkout", "-q", "phase"], cwd=repo, check=True)
        subprocess.run([*git, "merge", "-q", "--no-ff", "--no-edit", f"t{index}"], cwd=repo, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        empty, full = [], []
        for round_number in range(args.rounds):
            empty.append(phase_run(root / f"empty-{round_number}", args.tasks, 0))
            full.append(phase_run(root / f"full-{round_number}", args.tasks, args.history))
        phase_e, phase_f = (statistics.median(run[0] for run in runs) for runs in (empty, full))
        restart_e, restart_f = (statistics.median(run[2] for run in runs) for runs in (empty, full))
        rpcs = statistics.median(run[1] for run in empty + full)
        print(f"phase of {args.tasks} tasks: empty store {phase_e:.2f}s, {args.history} finished tasks {phase_f:.2f}s")
        print(f"  ratio {phase_f / phase_e:.2f}x (target at most 1.15x)")
        print(f"restart to first dispatch: empty {restart_e:.2f}s, with history {restart_f:.2f}s")
        print(f"  ratio {restart_f / restart_e:.2f}x (target at most 1.5x)")
        print(f"store RPCs per task, all-in: {rpcs:.1f} (target at most 8)")
        cw_time = phase_run(root / "fifty", 50, 0)[0]
        script_time = plain_script(root / "plain", 50)
        print(f"50 tasks at --max-agents 4: cw {cw_time:.2f}s, plain sequential script {script_time:.2f}s")
        print(f"  ratio {cw_time / script_time:.2f}x (aim at 1.5x or less)")


if __name__ == "__main__":
    main()
