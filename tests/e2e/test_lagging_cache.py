"""Decisions a lagging cache cannot make wrong: while the orchestrator's feed works through a burst
of another client's writes, a phase created and approved at once reaches review only after every
task of it is done, with all their work in its diff, and no task starts before what it depends on.
(Before the store kept these invariants and decisions waited for the feed, this phase went to
review within a second, every task PENDING and its diff empty.)"""

from __future__ import annotations

import time
from pathlib import Path

from google.protobuf import timestamp_pb2

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2, initiative_pb2, phase_pb2, task_pb2
from cw_edge.tokens import Identity
from tests.e2e.cluster import Cluster, cluster
from tests.support import stubs

REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW
BURST_ROWS = 4000
ROWS_PER_WRITE = 100
PAIRS = 6
MERGED_AT = timestamp_pb2.Timestamp(seconds=1_700_000_000)


def _finished_tasks(initiative_id: str, start: int) -> event_pb2.AppendEventRequest:
    """One write of ROWS_PER_WRITE finished, merged tasks: an import, or busy people elsewhere."""
    changes = [
        event_pb2.StateChange(
            create_task=task_pb2.CreateTaskRequest(
                task=task_pb2.Task(
                    initiative_id=initiative_id,
                    name=f"imported {start + number}",
                    status=task_pb2.TASK_STATUS_COMPLETED,
                    merge_time=MERGED_AT,
                )
            )
        )
        for number in range(ROWS_PER_WRITE)
    ]
    return event_pb2.AppendEventRequest(changes=changes)


def _burst(c: Cluster) -> float:
    """BURST_ROWS rows written as fast as the store takes them, with the orchestrator's token (the
    only one allowed to write finished tasks), by another client; returns the seconds it took. The
    orchestrator's feed reads each row again: it is left seconds behind the store."""
    assert c.store is not None
    writer = stubs(c._channel(c.store.address, Identity.ORCHESTRATOR))
    busy = writer.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="busy elsewhere"))
    )
    started = time.monotonic()
    for start in range(0, BURST_ROWS, ROWS_PER_WRITE):
        writer.events.AppendEvent(_finished_tasks(busy.id, start), timeout=60)
    return time.monotonic() - started


def _status(event: event_pb2.Event) -> str:
    return str(event.details["status"]) if "status" in event.details else ""


def _sequences(c: Cluster, types: set[str]) -> list[event_pb2.Event]:
    return [event for event in c.events() if event.type in types]


def test_a_phase_approved_during_a_burst_waits_for_every_task(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        initiative = c.initiative("Under load", c.project())
        print(f"{BURST_ROWS} rows written in {_burst(c):.2f}s")
        phase = c.phase(initiative, "Twelve")
        bases = [c.task(phase, f"base {n}", files={f"base{n}.txt": f"base {n}\n"}) for n in range(PAIRS)]
        dependents = [
            c.task(phase, f"after {n}", after=[base.id], files={f"after{n}.txt": f"after {n}\n"})
            for n, base in enumerate(bases)
        ]
        started = time.monotonic()
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        print(f"ApprovePhase answered in {time.monotonic() - started:.3f}s while the feed caught up")

        reviewed = c.wait_phase(phase.id, REVIEW, timeout=240)
        tasks = [c.get_task(task.id) for task in (*bases, *dependents)]
        assert all(task.status == task_pb2.TASK_STATUS_COMPLETED and task.HasField("merge_time") for task in tasks)
        assert reviewed.update_time.ToDatetime() >= max(task.merge_time.ToDatetime() for task in tasks)

        events = _sequences(c, {"task:updated", "task:dispatched", "phase:updated"})
        completed_at: dict[str, int] = {}
        dispatched_at: dict[str, int] = {}  # the first of each, events being in sequence order
        for event in events:
            if event.type == "task:updated" and _status(event) == "TASK_STATUS_COMPLETED":
                completed_at.setdefault(str(event.details["id"]), event.sequence)
            elif event.type == "task:dispatched":
                dispatched_at.setdefault(event.task_id, event.sequence)
        review_at = min(
            event.sequence
            for event in events
            if event.type == "phase:updated" and _status(event) == "PHASE_STATUS_PENDING_REVIEW"
        )
        assert review_at > max(completed_at[task.id] for task in tasks), "the phase went to review early"
        for base, dependent in zip(bases, dependents, strict=True):
            assert dispatched_at[dependent.id] > completed_at[base.id], f"{dependent.name} started before {base.name}"

        diff = "".join(project.unified_diff for project in c.diff(phase.id).projects)
        for n in range(PAIRS):
            assert f"+base {n}" in diff and f"+after {n}" in diff, n
