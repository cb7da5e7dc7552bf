"""The orchestrator keeps answering while its feed catches up with a burst of other clients' writes.

    python -m bench.feed_burst [--rows 8000] [--rounds 5]

Both services run as processes. Another client writes `--rows` finished tasks through the store's
API as fast as it takes them (AppendEvent, 100 rows a call, the orchestrator's token); the
orchestrator's feed reads each row again, so it is left seconds behind. Meanwhile, and then again
with nothing happening, the same calls are timed against the orchestrator: Health/Check, server
reflection's list of services, and ApprovePhase of a fresh phase. Each figure is a ratio of the
burst's time to the quiet time of the same call in the same run; the target is every answer under a
second. Last, how long a phase of one task approved at the end of the burst takes to reach review,
against the same phase approved with nothing happening: the decision waits for the feed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2, initiative_pb2, phase_pb2, task_pb2
from cw_edge.tokens import Identity
from tests.e2e.cluster import SCRIPTED, Cluster, wait_for
from tests.support import stubs

ROWS_PER_WRITE = 100
MERGED_AT = timestamp_pb2.Timestamp(seconds=1_700_000_000)
Call = Callable[[], object]


def _rows(initiative_id: str, start: int) -> event_pb2.AppendEventRequest:
    task = task_pb2.Task(initiative_id=initiative_id, status=task_pb2.TASK_STATUS_COMPLETED, merge_time=MERGED_AT)
    changes = []
    for number in range(ROWS_PER_WRITE):
        row = task_pb2.Task()
        row.CopyFrom(task)
        row.name = f"imported {start + number}"
        changes.append(event_pb2.StateChange(create_task=task_pb2.CreateTaskRequest(task=row)))
    return event_pb2.AppendEventRequest(changes=changes)


def _timed(call: Call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class Calls:
    """The three calls a person's tools make of a busy orchestrator, each on a fresh object."""

    def __init__(self, c: Cluster, initiative: initiative_pb2.Initiative) -> None:
        assert c.orchestrator is not None
        channel = c._channel(c.orchestrator.address)
        self.c, self.initiative = c, initiative
        self.health = health_pb2_grpc.HealthStub(channel)
        self.reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        self.phases = 0

    def check_health(self) -> None:
        self.health.Check(health_pb2.HealthCheckRequest(), timeout=30)

    def list_services(self) -> None:
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answer = next(iter(self.reflection.ServerReflectionInfo(iter([request]), timeout=30)))
        names = [service.name for service in answer.list_services_response.service]
        assert "cw.orchestrator.v1.OrchestratorService" in names, names

    def new_phase(self) -> phase_pb2.Phase:
        self.phases += 1
        return self.c.phase(self.initiative, f"empty {self.phases}")

    def by_name(self) -> dict[str, Call]:
        return {"Health/Check": self.check_health, "reflection list": self.list_services}


def _approve(c: Cluster, phase: phase_pb2.Phase) -> None:
    c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=30)


def _measure(calls: Calls, rounds: int, until: Callable[[], bool]) -> dict[str, list[float]]:
    """Each call in turn, `rounds` times at least and until `until()`; ApprovePhase on a phase made
    before its timing starts."""
    found: dict[str, list[float]] = {name: [] for name in [*calls.by_name(), "ApprovePhase"]}
    done = 0
    while done < rounds or not until():
        for name, call in calls.by_name().items():
            found[name].append(_timed(call))
        phase = calls.new_phase()
        found["ApprovePhase"].append(_timed(lambda phase=phase: _approve(calls.c, phase)))  # type: ignore[misc]
        done += 1
    return found


def _to_review(c: Cluster, initiative: initiative_pb2.Initiative, name: str) -> float:
    phase = c.phase(initiative, name)
    c.task(phase, name, files={f"{name}.txt": name})
    started = time.perf_counter()
    _approve(c, phase)
    wait_for(f"{name} in review", lambda: c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW, 300)
    return time.perf_counter() - started


def run(rows: int, rounds: int, root: Path) -> None:
    c = Cluster(root, [f"scripted={SCRIPTED}"], 4)
    try:
        c.start_store()
        c.start_orchestrator()
        initiative = c.initiative("Bench", c.project())
        calls = Calls(c, initiative)
        quiet_review = _to_review(c, initiative, "quiet")  # also clones the project: not timed again
        quiet = _measure(calls, rounds, lambda: True)
        quiet_review = _to_review(c, initiative, "quiet-again")
        assert c.store is not None
        writer = stubs(c._channel(c.store.address, Identity.ORCHESTRATOR))
        busy = writer.initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="busy"))
        )
        finished = threading.Event()

        def burst() -> None:
            try:
                for start in range(0, rows, ROWS_PER_WRITE):
                    writer.events.AppendEvent(_rows(busy.id, start), timeout=60)
            finally:
                finished.set()

        started = time.perf_counter()
        thread = threading.Thread(target=burst, name="burst")
        thread.start()
        loaded = _measure(calls, rounds, finished.is_set)
        thread.join()
        written = time.perf_counter() - started
        burst_review = _to_review(c, initiative, "after-burst")
        print(f"{rows} rows written by another client in {written:.2f}s ({rows / written:.0f} rows/s)")
        worst = 0.0
        for name, times in loaded.items():
            base, during = statistics.median(quiet[name]), statistics.median(times)
            worst = max(worst, *times)
            print(
                f"{name:16s} quiet p50 {base * 1000:7.1f} ms | during the burst p50 {during * 1000:7.1f} ms "
                f"({during / base:5.2f}x), max {max(times) * 1000:7.1f} ms, {len(times)} calls"
            )
        print(f"every answer during the burst under a second: {'yes' if worst < 1.0 else 'NO'} (max {worst:.3f}s)")
        print(
            f"a phase of one task approved at the burst's end reached review in {burst_review:.2f}s, "
            f"{burst_review / quiet_review:.2f}x the same phase approved when quiet ({quiet_review:.2f}s)"
        )
    finally:
        c.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run(args.rows, args.rounds, Path(directory))


if __name__ == "__main__":
    main()
