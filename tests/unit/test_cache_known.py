"""What a run's start asks beyond the live rows comes from what the events carried, once the cache
is as fresh as the start's own write; whatever the cache does not hold whole is read, as before
(orchestrator_service/cache/known.py, the feed's `_born` and `_carry`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

from google.protobuf import json_format, timestamp_pb2

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.cache import known
from orchestrator_service.cache.feed import Feed
from orchestrator_service.cache.state import Cache, RowKind
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer


def _json(row: Any) -> dict[str, Any]:
    return json_format.MessageToDict(row, preserving_proto_field_name=True)


class ListingStore:
    """Answers listings from `rows` (by the request's one set field), naming each call."""

    def __init__(self, agents: Sequence[agent_pb2.Agent] = (), tasks: Sequence[task_pb2.Task] = ()) -> None:
        self.calls: list[str] = []
        self.rows: dict[str, list[Any]] = {"agents": list(agents), "tasks": list(tasks)}
        self.agents = SimpleNamespace(ListAgents="ListAgents")
        self.tasks = SimpleNamespace(ListTasks="ListTasks")

    async def list_all(self, method: str, request: Any, field: str) -> list[Any]:
        self.calls.append(method)
        where = {name.name: value for name, value in request.ListFields()}
        return [row for row in self.rows[field] if all(getattr(row, k) == v for k, v in where.items())]

    async def projects_of(self, initiative_id: str) -> list[Any]:
        return []

    async def task_dependencies(self, task_ids: Sequence[str]) -> list[Any]:
        return []


class Following:
    """A feed over `store` that applies the events the test writes, in order, as the log would."""

    def __init__(self, store: ListingStore) -> None:
        self.cache = Cache()
        client = cast(StoreClient, store)
        self.feed = Feed(client, self.cache, Writer(client, self.cache))
        self.cache.put(RowKind.INITIATIVE, initiative_pb2.Initiative(id="i1"))
        self.cache.set_initiative_projects("i1", [])
        self.sequence = 0

    async def created(self, kind: str, row: Any, **details: Any) -> None:
        self.sequence += 1
        event = event_pb2.Event(sequence=self.sequence, type=f"{kind}:created")
        values = details.pop("values") if "values" in details else _json(row)
        event.details.update({"id": row.id, "values": values, **details})
        await self.feed.apply(event)
        self.cache.freshness.applied_up_to(self.sequence)


def _agent(agent_id: str, task_id: str, name: str, created: int) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id=agent_id,
        task_id=task_id,
        initiative_id="i1",
        name=name,
        status=agent_pb2.AGENT_STATUS_RUNNING,
        create_time=timestamp_pb2.Timestamp(seconds=created),
    )


def _task(task_id: str, created: int) -> task_pb2.Task:
    return task_pb2.Task(
        id=task_id, phase_id="p1", initiative_id="i1", create_time=timestamp_pb2.Timestamp(seconds=created)
    )


def test_a_new_initiative_s_agents_and_a_new_phase_s_tasks_come_from_the_events_without_a_read() -> None:
    async def scenario() -> None:
        store = ListingStore()
        f = Following(store)
        await f.created("initiative", initiative_pb2.Initiative(id="i1"))
        await f.created("phase", phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_PENDING))
        for task in (_task("t2", 2), _task("t1", 1)):
            await f.created("task", task)
        await f.created("agent", _agent("a1", "t1", "ann", 5))
        await f.created("agent", _agent("a2", "t1", "bob", 6))  # the latest of t1
        await f.created("agent", _agent("a3", "t2", "cy", 7))
        assert await known.agent_names(cast(StoreClient, store), f.cache, "i1") == {"t1": "bob", "t2": "cy"}
        listed = await known.phase_tasks(cast(StoreClient, store), f.cache, "p1")
        assert [task.id for task in listed] == ["t1", "t2"]  # as the store lists them: by creation
        assert await known.agent_ids(cast(StoreClient, store), f.cache, _task("t1", 1)) == {"a1", "a2"}
        assert store.calls == []

    asyncio.run(scenario())


def test_an_initiative_or_phase_older_than_the_following_is_read_and_its_agents_kept() -> None:
    async def scenario() -> None:
        store = ListingStore(agents=[_agent("a1", "t1", "ann", 5)], tasks=[_task("t1", 1)])
        f = Following(store)
        f.cache.put(
            RowKind.PHASE, phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_IN_PROGRESS)
        )
        client = cast(StoreClient, store)
        assert await known.agent_names(client, f.cache, "i1") == {"t1": "ann"}
        assert [task.id for task in await known.phase_tasks(client, f.cache, "p1")] == ["t1"]
        assert store.calls == ["ListAgents", "ListTasks"]
        await f.created("agent", _agent("a2", "t1", "bob", 6))  # followed from the read on
        assert await known.agent_names(client, f.cache, "i1") == {"t1": "bob"}
        assert store.calls == ["ListAgents", "ListTasks"]

    asyncio.run(scenario())


def test_a_phase_that_left_the_cache_is_no_longer_whole() -> None:
    async def scenario() -> None:
        store = ListingStore(tasks=[_task("t1", 1)])
        f = Following(store)
        await f.created("phase", phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_PENDING))
        assert f.cache.tasks_of_whole("p1") == []
        f.cache.put(
            RowKind.PHASE, phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_COMPLETED)
        )
        f.cache.put(RowKind.PHASE, phase_pb2.Phase(id="p1", initiative_id="i1", status=phase_pb2.PHASE_STATUS_PENDING))
        assert f.cache.tasks_of_whole("p1") is None  # reopened: its tasks were dropped with it
        assert [task.id for task in await known.phase_tasks(cast(StoreClient, store), f.cache, "p1")] == ["t1"]

    asyncio.run(scenario())


def test_only_an_agent_born_while_followed_and_sent_nothing_is_known_to_have_no_message() -> None:
    async def scenario() -> None:
        f = Following(ListingStore())
        f.cache.put(RowKind.AGENT, _agent("old", "t0", "old", 1))  # listed at start-up: its messages unknown
        for agent_id in ("a1", "a2"):
            await f.created("agent", _agent(agent_id, "t1", agent_id, 5))
        await f.created("message", SimpleNamespace(id="m1"), values={"recipient_id": "a2", "content": "hi"})
        await f.created("message", SimpleNamespace(id="m2"), values={"content": "to a person"})
        assert await known.with_messages(f.cache, ["old", "a1", "a2"]) == ["old", "a2"]
        # A message whose recipient the event does not say: no agent is known to have none.
        await f.created("message", SimpleNamespace(id="m3"), values={}, omitted=["recipient_id"])
        assert await known.with_messages(f.cache, ["a1", "a2"]) == ["a1", "a2"]

    asyncio.run(scenario())


def test_a_start_waits_for_the_feed_to_reach_its_own_write_before_skipping_a_read() -> None:
    async def scenario() -> None:
        f = Following(ListingStore())
        await f.created("agent", _agent("a1", "t1", "a1", 5))
        f.cache.freshness.saw(f.sequence + 2)  # our start's write, answered before the feed saw it
        asked = asyncio.create_task(known.with_messages(f.cache, ["a1"]))
        await asyncio.sleep(0)
        assert not asked.done()
        await f.created("message", SimpleNamespace(id="m1"), values={"recipient_id": "a1"})  # a reply before it
        assert not asked.done()
        await f.created("agent", _agent("a9", "t9", "a9", 6))
        assert await asked == ["a1"]

    asyncio.run(scenario())
