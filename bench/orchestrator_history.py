"""Does the orchestrator's cost follow live work, not history? Ratios measured in one run.

    python -m bench.orchestrator_history [--tasks 30] [--history 10000] [--rounds 2]

1. A phase of `--tasks` instant tasks on an empty store vs on a store already holding `--history`
   finished tasks (in other, finished initiatives, with their agents and events).
2. Orchestrator restart until its first dispatch, on the same two stores.
3. Store RPCs per task, all-in, counted from the store's own debug log (one line per request).
4. A phase of 50 instant tasks at --max-agents 4 (each agent in cw's sandbox, checkpoints on: the
   defaults) vs a plain script doing, for each task one after another, the same git worktree add,
   agent run (its commit) and merge without cw; target at most 0.8x. With the CPU seconds each
   side spent (cw: the orchestrator, the store and every process they started and reaped; the
   script: its children), which bound cw's wall time from below on this machine's cores.
5. From ApprovePhase to the first agent process running (its first write), vs the plain script
   making one worktree and starting one agent until its first write; target at most 1.3x.

`--fifty-only` runs 4 and 5 alone.

History is seeded straight into the SQLite file before the store starts (the store's own models
and migrations), so seeding 10,000 tasks takes seconds, not the minutes 30,000 RPCs would.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import field_mask_pb2
from sqlalchemy.orm import Session

from bench.many_agents import sandboxed_agent
from bench.orchestrator_phase import run_scripted_agent, start_scripted_agent
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


def plain_script(root: Path, tasks: int) -> tuple[float, float]:
    """What cw does per task, by hand and one task at a time: worktree, agent, merge. (Seconds,
    CPU seconds of the processes it ran.)"""
    repo = make_git_repo(root / "repo")
    subprocess.run([*GIT, "branch", "phase"], cwd=repo, check=True)
    cpu, start = children_cpu(), time.perf_counter()
    for index in range(tasks):
        work = root / "work" / f"t{index}"
        subprocess.run([*GIT, "branch", f"t{index}", "phase"], cwd=repo, check=True)
        subprocess.run([*GIT, "worktree", "add", "-q", str(work / "app"), f"t{index}"], cwd=repo, check=True)
        run_scripted_agent(work, index, work)
        subprocess.run([*GIT, "checkout", "-q", "phase"], cwd=repo, check=True)
        subprocess.run([*GIT, "merge", "-q", "--no-ff", "--no-edit", f"t{index}"], cwd=repo, check=True)
    return time.perf_counter() - start, children_cpu() - cpu


GIT = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]


def children_cpu() -> float:
    """CPU seconds of this process's reaped children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def all_in_cpu(pid: int) -> float:
    """A service's CPU seconds with those of every child it reaped (shims, git, and through the
    shims their sandboxes and agents)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cw_phase(root: Path, tasks: int, max_agents: int = 4) -> tuple[float, float]:
    """A phase of `tasks` instant tasks, with the defaults (sandbox, checkpoints): (seconds from
    ApprovePhase to review, CPU seconds of both services and everything they ran meanwhile)."""
    root.mkdir(parents=True)
    c = Cluster(root, [f"scripted={SCRIPTED}"], max_agents)
    try:
        c.start_store()
        c.start_orchestrator()
        assert c.store is not None and c.orchestrator is not None
        services = (c.store.process.pid, c.orchestrator.process.pid)
        phase = c.phase(c.initiative("Fifty", c.project()), "P")
        for index in range(tasks):
            c.task(phase, f"t{index}", files={f"f{index}.txt": str(index)})
        cpu, start = sum(all_in_cpu(pid) for pid in services), time.perf_counter()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        wait_for("the phase", lambda: c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW, 900, 0.02)
        elapsed = time.perf_counter() - start
        # The shims of the last runs are reaped by the next look of the watch loop.
        wait_for("the last shims reaped", lambda: not _shims_of(c.orchestrator.process.pid), 30, 0.05)  # type: ignore[union-attr]
        return elapsed, sum(all_in_cpu(pid) for pid in services) - cpu
    finally:
        c.close()


def _shims_of(pid: int) -> list[str]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += (task / "children").read_text().split()
        except OSError:
            continue
    return found


def first_agent_cw(root: Path) -> float:
    """Seconds from ApprovePhase to the first write of the phase's one agent (in its sandbox)."""
    root.mkdir(parents=True)
    c = Cluster(root, [f"scripted={SCRIPTED}"], 4)
    try:
        c.start_store()
        c.start_orchestrator()
        phase = c.phase(c.initiative("First", c.project()), "P")
        c.task(phase, "first", files={"first.txt": "1"})
        start = time.perf_counter()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        wait_for("the first agent", lambda: any(c.state_dir.glob("prompts-*.txt")), 120, 0.002)
        elapsed = time.perf_counter() - start
        wait_for("the phase", lambda: c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW, 120, 0.05)
        return elapsed
    finally:
        c.close()


def first_agent_plain(root: Path) -> float:
    """Seconds for the plain script to make one worktree and start one agent until its first write."""
    repo = make_git_repo(root / "repo")
    subprocess.run([*GIT, "branch", "phase"], cwd=repo, check=True)
    work, state = root / "work" / "t0", root / "state"
    state.mkdir()
    start = time.perf_counter()
    subprocess.run([*GIT, "branch", "t0", "phase"], cwd=repo, check=True)
    subprocess.run([*GIT, "worktree", "add", "-q", str(work / "app"), "t0"], cwd=repo, check=True)
    agent = start_scripted_agent(state, 0, work)
    wait_for("the plain agent", lambda: any(state.glob("prompts-*.txt")), 120, 0.002)
    elapsed = time.perf_counter() - start
    agent.wait(60)
    return elapsed


def first_agent_plain_sandboxed(root: Path) -> float:
    """The plain script's worktree and agent start, its agent in a bwrap sandbox as cw builds one
    (bench/many_agents.py `sandboxed_agent`): the floor of a start that keeps cw's boundary."""
    repo = make_git_repo(root / "repo")
    subprocess.run([*GIT, "branch", "phase"], cwd=repo, check=True)
    state = root / "state"
    state.mkdir()
    command, env = sandboxed_agent(root / "agents", state, 0)
    start = time.perf_counter()
    subprocess.run([*GIT, "branch", "t0", "phase"], cwd=repo, check=True)
    subprocess.run([*GIT, "worktree", "add", "-q", str(root / "work" / "t0" / "app"), "t0"], cwd=repo, check=True)
    agent = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_for("the sandboxed agent", lambda: any(state.glob("prompts-*.txt")), 120, 0.002)
        return time.perf_counter() - start
    finally:
        agent.kill()
        agent.wait()


def fifty(root: Path, rounds: int) -> None:
    """Parts 4 and 5, each pair alternating cw and the script, medians of `rounds`."""
    runs, scripts, firsts, plains, boxed = [], [], [], [], []
    for index in range(rounds):
        runs.append(cw_phase(root / f"fifty-{index}", 50))
        scripts.append(plain_script(root / f"plain-{index}", 50))
        firsts.append(first_agent_cw(root / f"first-{index}"))
        plains.append(first_agent_plain(root / f"first-plain-{index}"))
        boxed.append(first_agent_plain_sandboxed(root / f"first-boxed-{index}"))
    cw_time, cw_cpu = statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs)
    script_time, script_cpu = statistics.median(s[0] for s in scripts), statistics.median(s[1] for s in scripts)
    cores = os.cpu_count() or 1
    print(
        f"50 tasks at --max-agents 4 (sandbox, checkpoints): cw {cw_time:.2f}s, plain sequential script "
        f"{script_time:.2f}s (medians of {rounds})"
    )
    print(f"  ratio {cw_time / script_time:.2f}x (target at most 0.8x)")
    print(
        f"  CPU: cw {cw_cpu:.2f}s (services and all they ran), script {script_cpu:.2f}s; on {cores} cores cw "
        f"needs at least {cw_cpu / cores:.2f}s ({cw_cpu / cores / script_time:.2f}x the script)"
    )
    first, plain = statistics.median(firsts), statistics.median(plains)
    print(
        f"ApprovePhase to the first agent running: cw {first * 1000:.0f} ms, plain worktree + agent start "
        f"{plain * 1000:.0f} ms"
    )
    print(f"  ratio {first / plain:.2f}x (target at most 1.3x)")
    floor = statistics.median(boxed)
    print(
        f"  floor: the plain script with its agent in cw's sandbox {floor * 1000:.0f} ms "
        f"({floor / plain:.2f}x the plain start; cw is {first / floor:.2f}x this floor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fifty-only", action="store_true", help="parts 4 and 5 alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        if args.fifty_only:
            fifty(root, args.rounds)
            return
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
        fifty(root, args.rounds)


if __name__ == "__main__":
    main()
