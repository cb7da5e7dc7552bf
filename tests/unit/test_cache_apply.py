"""The feed builds rows from the values events carry, and reads a row again only when they are not
enough (orchestrator_service/cache/carried.py, feed.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import json_format, timestamp_pb2

from cw.store.v1 import account_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.cache.carried import carried_row, is_newer
from orchestrator_service.cache.feed import Feed
from orchestrator_service.cache.state import Cache, Change, RowKind
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer


def _stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def _task(**fields: Any) -> task_pb2.Task:
    base: dict[str, Any] = {
        "id": "t1",
        "initiative_id": "i1",
        "phase_id": "p1",
        "name": "t",
        "status": task_pb2.TASK_STATUS_PENDING,
        "update_time": _stamp(10),
    }
    return task_pb2.Task(**(base | fields))


def _json(row: Any) -> dict[str, Any]:
    return json_format.MessageToDict(row, preserving_proto_field_name=True)


def _event(sequence: int, event_type: str, details: dict[str, Any]) -> event_pb2.Event:
    event = event_pb2.Event(sequence=sequence, type=event_type)
    event.details.update(details)
    return event


class CountingStore:
    """The reads the feed makes, each named, answered from `rows`."""

    def __init__(self, rows: dict[tuple[str, str], Any]) -> None:
        self.rows = rows
        self.reads: list[str] = []

    async def get(self, kind: str, row_id: str) -> Any:
        self.reads.append(f"get {kind} {row_id}")
        return self.rows[(kind, row_id)]

    async def task_dependencies(self, task_ids: Sequence[str]) -> list[task_pb2.TaskDependency]:
        self.reads.append(f"dependencies {','.join(task_ids)}")
        return []


def _feed(store: CountingStore) -> tuple[Feed, Cache, list[Change]]:
    cache = Cache()
    changes: list[Change] = []
    cache.listeners.append(changes.append)
    cache.put(RowKind.INITIATIVE, initiative_pb2.Initiative(id="i1"))
    cache.set_initiative_projects("i1", [])
    cache.put(RowKind.PHASE, phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_IN_PROGRESS))
    client = cast(StoreClient, store)
    return Feed(client, cache, Writer(client, cache)), cache, changes


def test_an_update_s_values_apply_to_the_held_row() -> None:
    held = _task(reason="r", summary="s")
    values = {"status": "TASK_STATUS_BLOCKED", "reason": None, "update_time": "1970-01-01T00:00:20Z"}
    row = carried_row(RowKind.TASK, "updated", {"id": "t1", "values": values}, held)
    assert row == _task(status=task_pb2.TASK_STATUS_BLOCKED, summary="s", update_time=_stamp(20))
    assert held.reason == "r"  # the held row is not changed in place


def test_an_event_without_values_or_with_one_left_out_does_not_carry_the_row() -> None:
    held = _task()
    assert carried_row(RowKind.TASK, "updated", {"id": "t1", "changed": ["status"]}, held) is None  # an older event
    left_out = {"id": "t1", "values": {"update_time": "1970-01-01T00:00:20Z"}, "omitted": ["description"]}
    assert carried_row(RowKind.TASK, "updated", left_out, held) is None
    assert carried_row(RowKind.TASK, "updated", {"id": "t1", "values": {}}, None) is None  # not held
    assert carried_row(RowKind.TASK, "created", {"id": "t1", "values": _json(held)}, None) == held


def test_a_version_is_newer_by_its_update_time() -> None:
    assert is_newer(_task(update_time=_stamp(11)), _task())
    assert not is_newer(_task(), _task())
    assert is_newer(_task(), None)


def test_the_feed_applies_values_without_reading() -> None:
    store = CountingStore({})
    feed, cache, changes = _feed(store)
    created = _task()
    batch = [
        _event(1, "task:created", {"id": "t1", "values": _json(created)}),
        _event(2, "task:updated", {"id": "t1", "values": {"summary": "done", "update_time": "1970-01-01T00:00:30Z"}}),
        _event(3, "task_dependency:created", {"id": "d1", "values": {"task_id": "t1", "depends_on_task_id": "t0"}}),
    ]
    batch[2].task_id = "t1"
    asyncio.run(feed.apply_batch(batch))
    assert cache.tasks["t1"] == _task(summary="done", update_time=_stamp(30))
    assert cache.depends_on["t1"] == {"t0"}
    assert store.reads == ["dependencies t1"]  # the new task's edges, once: no row read again
    assert [change.external for change in changes if change.kind == RowKind.TASK]
    assert cache.freshness.applied == 3


def test_a_change_applied_from_an_event_names_the_fields_it_changed() -> None:
    store = CountingStore({})
    feed, cache, changes = _feed(store)
    cache.put(RowKind.TASK, _task())
    changes.clear()
    values = {"summary": "done", "status": "TASK_STATUS_BLOCKED", "update_time": "1970-01-01T00:00:30Z"}
    asyncio.run(feed.apply_batch([_event(4, "task:updated", {"id": "t1", "values": values})]))
    (change,) = changes
    assert change.kind == RowKind.TASK and change.fields == {"summary", "status", "update_time"}
    assert change.touches("status", "merge_time") and not change.touches("merge_time", "phase_id")


def test_the_feed_reads_again_what_the_values_do_not_give() -> None:
    stored = _task(description="long", update_time=_stamp(40))
    store = CountingStore({("task", "t1"): stored, ("task", "t2"): _task(id="t2")})
    feed, cache, _ = _feed(store)
    cache.put(RowKind.TASK, _task())
    batch = [
        _event(5, "task:updated", {"id": "t1", "values": {"update_time": "1970-01-01T00:00:40Z"}, "omitted": ["x"]}),
        _event(6, "task:updated", {"id": "t2", "changed": ["status"]}),  # an older event: no values
    ]
    asyncio.run(feed.apply_batch(batch))
    assert sorted(store.reads) == ["get task t1", "get task t2"]
    assert cache.tasks["t1"] == stored


def test_an_event_older_than_the_held_row_leaves_it() -> None:
    store = CountingStore({})
    feed, cache, changes = _feed(store)
    newer = _task(summary="newer", update_time=_stamp(50))
    cache.put(RowKind.TASK, newer)
    changes.clear()
    older = {"id": "t1", "values": {"summary": "older", "update_time": "1970-01-01T00:00:20Z"}}
    asyncio.run(feed.apply_batch([_event(7, "task:updated", older)]))
    assert cache.tasks["t1"] == newer
    assert changes == []
    assert cache.has_seen(RowKind.TASK, "t1", 7)
    assert store.reads == []


def test_an_account_handed_out_is_not_news() -> None:
    store = CountingStore({})
    feed, cache, changes = _feed(store)
    cache.put(RowKind.ACCOUNT, account_pb2.Account(id="a1", update_time=_stamp(1)))
    changes.clear()
    handed = {"id": "a1", "changed": ["last_used_time"], "values": {"last_used_time": "1970-01-01T00:00:02Z"}}
    asyncio.run(feed.apply_batch([_event(8, "account:updated", handed)]))
    assert changes == [] and store.reads == []
