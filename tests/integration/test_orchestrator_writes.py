"""The orchestrator's writer against a real store: a write built from a stale row answers ABORTED,
changes nothing, and leaves the cache holding the row as stored, ready to decide again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from google.protobuf import field_mask_pb2

from cw.store.v1 import event_pb2, initiative_pb2, phase_pb2, task_pb2
from cw_edge.tokens import Identity
from orchestrator_service.cache.state import Cache, RowKind
from orchestrator_service.events import event
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Stale, Writer, update
from tests.support import RunningStore


def test_a_stale_write_changes_nothing_and_refreshes_the_cache(store: RunningStore, api: SimpleNamespace) -> None:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Stale"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="P"))
    )
    read = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="t")))
    renamed = api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=read.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
        )
    )

    async def scenario() -> None:
        client = StoreClient(store.address, store.handle.auth.tokens[Identity.ORCHESTRATOR])
        cache = Cache()
        writer = Writer(client, cache)
        cache.put(RowKind.TASK, read)
        with pytest.raises(Stale):
            await writer.append(
                [event("task:blocked", read)], [update(read, status=task_pb2.TASK_STATUS_BLOCKED, reason="x")]
            )
        assert cache.tasks[read.id] == renamed  # read again: the next decision starts from here
        answer = await writer.append([], [update(cache.tasks[read.id], reason="decided again")])
        assert answer.rows[0].task.reason == "decided again" and answer.last_sequence > 0
        assert cache.tasks[read.id].reason == "decided again"
        await client.close()

    asyncio.run(scenario())
    stored = api.tasks.GetTask(task_pb2.GetTaskRequest(id=read.id))
    assert stored.status == task_pb2.TASK_STATUS_PENDING and stored.name == "renamed"
    events = api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1000)).events
    assert not any(e.type == "task:blocked" for e in events)
