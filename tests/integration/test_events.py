"""The durable event log through EventService: replay, follow, heartbeats, atomic appends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import duration_pb2, field_mask_pb2
from sqlalchemy import select

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from store_service.db.models import Event, Initiative, Phase, new_id
from tests.support import RunningStore, call_error, stubs

WRITERS = 8
CHANGES_PER_WRITER = 200


def _task(api: SimpleNamespace, name: str = "t") -> Any:
    return api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name=name)))


def _last_sequence(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def _real(events: Iterator[event_pb2.Event]) -> Iterator[event_pb2.Event]:
    return (event for event in events if event.type != "heartbeat")


def _write_concurrently(store: RunningStore) -> None:
    def writer(index: int) -> None:
        with store.channel() as channel:
            api = stubs(channel)
            task = _task(api, f"w{index}")
            for change in range(CHANGES_PER_WRITER - 1):
                api.tasks.UpdateTask(
                    task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, order=change + 1)), timeout=30
                )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_watcher_sees_every_concurrent_write_exactly_once_in_order(store: RunningStore, api: SimpleNamespace) -> None:
    total = WRITERS * CHANGES_PER_WRITER
    stream = api.events.WatchEvents(event_pb2.WatchEventsRequest(after_sequence=0), timeout=120)
    received: list[int] = []

    def watch() -> None:
        for event in _real(stream):
            received.append(event.sequence)
            if len(received) == total:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    _write_concurrently(store)
    watcher.join(120)
    stream.cancel()
    assert _last_sequence(api) == total
    assert received == list(range(1, total + 1))


def test_reconnecting_with_the_last_sequence_misses_nothing(store: RunningStore, api: SimpleNamespace) -> None:
    writers = threading.Thread(target=_write_concurrently, args=(store,))
    writers.start()
    received: list[int] = []
    total = WRITERS * CHANGES_PER_WRITER
    while len(received) < total:
        # Drop the stream after a few events each time, then resume from the last one seen.
        stream = api.events.WatchEvents(
            event_pb2.WatchEventsRequest(after_sequence=received[-1] if received else 0), timeout=60
        )
        for count, event in enumerate(_real(stream), start=1):
            received.append(event.sequence)
            if count == 97 or len(received) == total:
                break
        stream.cancel()
    writers.join()
    assert received == list(range(1, total + 1))


def test_idle_stream_gets_heartbeats(api: SimpleNamespace) -> None:
    _task(api)
    stream = api.events.WatchEvents(
        event_pb2.WatchEventsRequest(heartbeat_interval=duration_pb2.Duration(nanos=100_000_000)), timeout=30
    )
    first, second = next(stream), next(stream)
    stream.cancel()
    assert first.type == "task:created" and first.sequence == 1
    assert second.type == "heartbeat" and second.sequence == 0


def test_filters_by_type_and_initiative(api: SimpleNamespace) -> None:
    one = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="one"))
    )
    api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="two"))
    )
    api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", initiative_id=one.id)))
    listed = api.events.ListEvents(event_pb2.ListEventsRequest(initiative_id=one.id))
    assert [e.type for e in listed.events] == ["initiative:created", "task:created"]
    stream = api.events.WatchEvents(event_pb2.WatchEventsRequest(types=["task:created"]), timeout=30)
    event = next(stream)
    stream.cancel()
    assert (event.type, event.initiative_id) == ("task:created", one.id)


def test_cursor_errors(api: SimpleNamespace) -> None:
    assert call_error(api.events.ListEvents, event_pb2.ListEventsRequest(after_sequence=-1)).code == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    ahead = call_error(api.events.ListEvents, event_pb2.ListEventsRequest(after_sequence=10))
    assert ahead.code == grpc.StatusCode.OUT_OF_RANGE
    stream = api.events.WatchEvents(event_pb2.WatchEventsRequest(after_sequence=10), timeout=10)
    try:
        next(stream)
        raise AssertionError("a cursor beyond the log must fail")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE


def test_append_event_applies_its_changes_atomically(api: SimpleNamespace) -> None:
    task = _task(api)
    appended = api.events.AppendEvent(
        event_pb2.AppendEventRequest(
            events=[
                event_pb2.Event(type="task:dispatched", task_id=task.id),
                event_pb2.Event(type="agent:spawned", task_id=task.id),
            ],
            changes=[
                event_pb2.StateChange(
                    update_task=task_pb2.UpdateTaskRequest(
                        task=task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_IN_PROGRESS),
                        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
                    )
                ),
                event_pb2.StateChange(
                    create_agent=agent_pb2.CreateAgentRequest(
                        agent=agent_pb2.Agent(name="brave-otter", worktree_id="/w", task_id=task.id)
                    )
                ),
            ],
        )
    )
    assert [e.type for e in appended.events] == ["task:dispatched", "agent:spawned"]
    assert appended.events[1].sequence == appended.events[0].sequence + 1
    assert len(appended.created_ids) == 1
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).status == task_pb2.TASK_STATUS_IN_PROGRESS
    assert api.agents.GetAgent(agent_pb2.GetAgentRequest(id=appended.created_ids[0])).task_id == task.id

    before = _last_sequence(api)
    failed = call_error(
        api.events.AppendEvent,
        event_pb2.AppendEventRequest(
            events=[event_pb2.Event(type="task:completed", task_id=task.id)],
            changes=[
                event_pb2.StateChange(
                    update_task=task_pb2.UpdateTaskRequest(
                        task=task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_COMPLETED),
                        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
                    )
                ),
                event_pb2.StateChange(
                    update_agent=agent_pb2.UpdateAgentRequest(agent=agent_pb2.Agent(id="missing", pid=1))
                ),
            ],
        ),
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).status == task_pb2.TASK_STATUS_IN_PROGRESS
    assert _last_sequence(api) == before
    missing_type = call_error(api.events.AppendEvent, event_pb2.AppendEventRequest(events=[event_pb2.Event()]))
    assert missing_type.violations == ["events[0].type"]
    no_event = call_error(api.events.AppendEvent, event_pb2.AppendEventRequest())
    assert no_event.violations == ["events"]


def test_hundred_open_streams_do_not_starve_unary_calls(api: SimpleNamespace) -> None:
    task = _task(api)
    hour = duration_pb2.Duration(seconds=3600)
    start = _last_sequence(api)
    streams = [
        api.events.WatchEvents(event_pb2.WatchEventsRequest(after_sequence=start, heartbeat_interval=hour), timeout=60)
        for _ in range(100)
    ]
    for _ in range(50):
        assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id), timeout=10).id == task.id
    updated = api.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, order=9)), timeout=10)
    assert updated.order == 9
    received = [next(stream) for stream in streams]
    for stream in streams:
        stream.cancel()
    assert {(event.sequence, event.type) for event in received} == {(start + 1, "task:updated")}


def test_automatic_events_name_statuses_as_the_api_does(api: SimpleNamespace) -> None:
    task = _task(api)
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="words"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative.id, name="p", status=phase_pb2.PHASE_STATUS_APPROVED)
        )
    )
    api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_COMPLETED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )
    api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_IN_PROGRESS))
    )
    events = api.events.ListEvents(
        event_pb2.ListEventsRequest(types=["phase:created", "task:updated", "phase:updated"])
    )
    assert [(e.type, e.details["status"]) for e in events.events] == [
        ("phase:created", "PHASE_STATUS_APPROVED"),
        ("task:updated", "TASK_STATUS_COMPLETED"),
        ("phase:updated", "PHASE_STATUS_IN_PROGRESS"),
    ]


def test_events_of_one_flush_keep_each_their_own_scope(store: RunningStore) -> None:
    """One flush records a new initiative's event (scoped to it alone) and a renamed phase's (scoped
    to its initiative and itself), in one INSERT: each keeps its own scope, and neither is refused
    for lacking the other's."""
    with store.handle.db.units.write() as uow:
        first = Initiative(id=new_id(), name="first")
        uow.session.add(first)
        uow.session.flush()
        phase = Phase(id=new_id(), initiative_id=first.id, name="p")
        uow.session.add(phase)
        uow.session.flush()
        second = Initiative(id=new_id(), name="second")
        uow.session.add(second)
        phase.name = "renamed"
        uow.session.flush()
        third = Phase(id=new_id(), initiative_id=first.id, name="q")
        uow.session.add(third)
        first.name = "first, renamed"
        uow.session.flush()
        uow.commit()
    with store.handle.db.units.read() as uow:
        recorded = {(e.type, e.initiative_id, e.phase_id) for e in uow.session.scalars(select(Event))}
    assert ("initiative:created", second.id, None) in recorded
    assert ("phase:updated", first.id, phase.id) in recorded
    assert ("phase:created", first.id, third.id) in recorded
    assert ("initiative:updated", first.id, None) in recorded
