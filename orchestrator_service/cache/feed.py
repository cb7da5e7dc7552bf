"""Fills the cache: list the live rows once, then follow the store's event log.

The position in the log is taken before listing, so a write that lands while the lists are read is
seen twice at worst (applying a row twice is harmless, an older version never replaces a newer
one) and never missed. Each `<entity>:created|updated|deleted` event names its row and carries its
values: the feed builds the row from them (carried.py), and reads it again only when they are not
enough (an older event without values, a value too large for the event, an update of a row the
cache does not hold); never when the cache already holds a version at least as new (the
orchestrator's own writes). A slow periodic resync lists everything again, to catch a bug, not as
the main path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from cw.store.v1 import account_pb2, agent_pb2, conversation_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.cache.carried import carried_row, carries, is_newer
from orchestrator_service.cache.state import (
    ACTIVE_PHASE,
    CACHED_KINDS,
    DEPENDENCIES,
    LIVE_AGENT,
    LIVE_PHASE,
    UNFINISHED_TASK,
    Cache,
    Change,
    MessageChange,
    PhaseChange,
    RowKind,
    change_of,
)
from orchestrator_service.dispatch import Backoff
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer

log = logging.getLogger("cw.orchestrator")
T = TypeVar("T")

ROW_KINDS = CACHED_KINDS  # the entities whose events name a cached row
# At most this many events are applied as one batch, and this many of their rows read at once.
MAX_BATCH = 256
READS_IN_FLIGHT = 16
RESYNC_SECONDS = 120.0
# How long an event may wait for the answer to a write of ours still in flight.
OWN_WRITE_WAIT_SECONDS = 0.5


class Feed:
    def __init__(self, store: StoreClient, cache: Cache, writer: Writer, resync_seconds: float = RESYNC_SECONDS):
        self.store = store
        self.cache = cache
        self.writer = writer
        self.resync_seconds = resync_seconds
        self.cursor = 0
        self.loaded = asyncio.Event()
        # Rows read for the batch being applied (apply_batch), by (kind, id).
        self._read_ahead: dict[tuple[RowKind, str], Any] = {}
        # The dependencies of the batch's new tasks the cache keeps, read with the rows; the new
        # tasks whose dependencies were looked for there (absent from the first: not kept).
        self._dependencies_ahead: dict[str, set[str]] = {}
        self._dependencies_looked: set[str] = set()
        # Applying a batch (apply_batch), which waited for our writes in flight at its start.
        self._in_batch = False
        cache.listeners.append(self._carry)

    # ---- list ------------------------------------------------------------------------------------

    async def load(self, advance: bool = True) -> None:
        """Takes the log position, then lists every live row into the cache; `advance`: the cursor
        and the freshness mark move to that position (not for a resync while the log is followed,
        which has not applied the events before it)."""
        head = await self.store.call(self.store.events.ListEvents, event_pb2.ListEventsRequest(page_size=1))
        position = head.head_sequence
        store, cache = self.store, self.cache
        for account in await store.list_all(store.accounts.ListAccounts, account_pb2.ListAccountsRequest(), "accounts"):
            cache.put(RowKind.ACCOUNT, account)
        for agent in await store.list_all(
            store.agents.ListAgents, agent_pb2.ListAgentsRequest(statuses=LIVE_AGENT), "agents"
        ):
            cache.put(RowKind.AGENT, agent)
        for phase in await store.list_all(
            store.phases.ListPhases, phase_pb2.ListPhasesRequest(statuses=LIVE_PHASE), "phases"
        ):
            cache.put(RowKind.PHASE, phase)
        active = [phase.id for phase in cache.phases.values() if phase.status in ACTIVE_PHASE]
        for task in await self._live_tasks(active):
            cache.put(RowKind.TASK, task)
        cache.whole_phases.update(active)  # every task of theirs listed, in one status or another
        pending = conversation_pb2.ListConversationsRequest(status=conversation_pb2.CONVERSATION_STATUS_PENDING)
        for conversation in await store.list_all(store.conversations.ListConversations, pending, "conversations"):
            cache.put(RowKind.CONVERSATION, conversation)
        await self._load_initiatives()
        await self._load_dependencies(list(cache.tasks))
        if advance:
            self.cursor = max(self.cursor, position)
            self.cache.freshness.applied_up_to(self.cursor)
        self.loaded.set()

    async def _live_tasks(self, active_phases: list[str]) -> list[task_pb2.Task]:
        store = self.store
        listings = [
            task_pb2.ListTasksRequest(statuses=UNFINISHED_TASK),
            task_pb2.ListTasksRequest(status=task_pb2.TASK_STATUS_COMPLETED, merged=False),
        ]
        # Finished tasks of phases still in play: their summaries feed dependents' prompts.
        listings += [
            task_pb2.ListTasksRequest(phase_id=phase_id, status=task_pb2.TASK_STATUS_COMPLETED, merged=True)
            for phase_id in active_phases
        ]
        found: list[task_pb2.Task] = []
        for request in listings:
            found += await store.list_all(store.tasks.ListTasks, request, "tasks")
        return found

    async def _load_initiatives(self) -> None:
        store, cache = self.store, self.cache
        for initiative in await store.list_all(
            store.initiatives.ListInitiatives,
            initiative_pb2.ListInitiativesRequest(statuses=[initiative_pb2.INITIATIVE_STATUS_ACTIVE]),
            "initiatives",
        ):
            cache.put(RowKind.INITIATIVE, initiative)
        await self.ensure_initiatives(self._referenced_initiatives())
        for initiative_id in list(cache.initiatives):
            await self.load_projects(initiative_id)

    def _referenced_initiatives(self) -> set[str]:
        cache = self.cache
        ids = {phase.initiative_id for phase in cache.phases.values()}
        ids |= {cache.initiative_id_of(task) for task in cache.tasks.values()}
        ids |= {agent.initiative_id for agent in cache.agents.values()}
        return {initiative_id for initiative_id in ids if initiative_id}

    async def ensure_initiatives(self, ids: Iterable[str]) -> None:
        """Initiatives that cached rows belong to, whatever their status, with their projects."""
        for initiative_id in ids:
            missing = initiative_id and initiative_id not in self.cache.initiatives
            if missing and await self.writer.reread(RowKind.INITIATIVE, initiative_id) is not None:
                await self.load_projects(initiative_id)

    async def load_projects(self, initiative_id: str) -> None:
        projects = await self.store.projects_of(initiative_id)
        for project in projects:
            self.cache.put(RowKind.PROJECT, project)
        self.cache.set_initiative_projects(initiative_id, [project.id for project in projects])

    async def _load_dependencies(self, task_ids: list[str]) -> None:
        found: dict[str, set[str]] = {task_id: set() for task_id in task_ids}
        for edge in await self.store.task_dependencies(task_ids):
            found.setdefault(edge.task_id, set()).add(edge.depends_on_task_id)
        for task_id, needs in found.items():
            if task_id in self.cache.tasks:
                self.cache.set_dependencies(task_id, needs)

    async def _dependencies_of(self, task_id: str) -> set[str]:
        return {edge.depends_on_task_id for edge in await self.store.task_dependencies([task_id])}

    async def _new_task_dependencies(self, task_id: str) -> set[str] | None:
        """A created task's dependencies: read with its batch, or now; None when the row read with
        the batch shows the cache will not keep it (or it is gone)."""
        if task_id in self._dependencies_looked:
            return self._dependencies_ahead.get(task_id)
        return await self._dependencies_of(task_id)

    # ---- watch -----------------------------------------------------------------------------------

    async def follow(self) -> None:
        """Applies the log from the cursor on; reconnects after a drop, relists if the log is not
        the one the cursor came from."""
        backoff = Backoff()
        while True:
            try:
                request = event_pb2.WatchEventsRequest(after_sequence=self.cursor)
                stream = _batches(self.store.events.WatchEvents(request), MAX_BATCH)
                async with contextlib.aclosing(stream) as batches:  # its reader ends with this loop
                    async for batch in batches:
                        backoff.reset()
                        await self.apply_batch([stored for stored in batch if stored.sequence])  # 0: heartbeat
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.OUT_OF_RANGE:
                    log.warning("the store's event log is behind our cursor: listing everything again")
                    self.cursor = 0
                    self.cache.freshness.restart()
                    self.cache.forget_followed()
                    await self._retrying_load()
                    continue
                await asyncio.sleep(backoff.next_delay())
            except Exception:  # a bug in applying one event must not stop the feed (and every gate)
                log.exception("applying the store's events failed; following again from %d", self.cursor)
                await asyncio.sleep(backoff.next_delay())

    async def apply_batch(self, batch: list[event_pb2.Event]) -> None:
        """The events that arrived together, in order, the rows they name read beforehand all at
        once (a burst of other clients' writes is caught up at the pace of concurrent reads, not of
        one read after another)."""
        if batch:
            await self.writer.quiet(OWN_WRITE_WAIT_SECONDS)
        parsed = [(stored, _details(stored)) for stored in batch]
        self._read_ahead = await self._read_rows(parsed)
        # Waited for our writes once for the whole batch: applying its events (mostly from their
        # values, without a read) does not stop between two events of one transaction to wait again,
        # which let a controller see half of another orchestrator's start (a task IN_PROGRESS
        # without its agent) and read the store for it.
        self._in_batch = True
        try:
            for stored, details in parsed:
                await self.apply(stored, details)
                self.cursor = stored.sequence
                self.cache.freshness.applied_up_to(stored.sequence)
        finally:
            self._read_ahead, self._dependencies_ahead, self._dependencies_looked = {}, {}, set()
            self._in_batch = False

    async def _read_rows(
        self, batch: list[tuple[event_pb2.Event, dict[str, Any]]]
    ) -> dict[tuple[RowKind, str], object]:
        """The rows the batch's events do not carry, read at once when there are several: (kind,
        id) -> the row as stored now, or None when it is gone. With them, in one listing, the
        dependencies of the batch's new tasks whose rows are known by then."""
        wanted, created = self._not_carried(batch)
        rows = await self._read_wanted(wanted) if len(wanted) >= 2 else {}
        known = {
            task_id: row if row is not None else rows[(RowKind.TASK, task_id)]
            for task_id, row in created.items()
            if row is not None or (RowKind.TASK, task_id) in rows
        }
        await self._read_dependencies(known)
        return rows

    def _not_carried(
        self, batch: list[tuple[event_pb2.Event, dict[str, Any]]]
    ) -> tuple[dict[tuple[RowKind, str], None], dict[str, Any]]:
        """The rows the batch's events name but do not carry (to read), and its new tasks, each
        with its row when the event carries it."""
        wanted: dict[tuple[RowKind, str], None] = {}
        created: dict[str, Any] = {}
        held: set[tuple[RowKind, str]] = set()  # rows the cache will hold when the event is applied
        for stored, details in batch:
            key = _row_key(stored, details)
            if key is None or self.cache.has_seen(*key, stored.sequence):
                continue
            action = stored.type.partition(":")[2]
            if carries(action, details, key in held or key[1] in self.cache.table(key[0])):
                held.add(key)
            else:
                wanted[key] = None
            if key[0] == RowKind.TASK and action == "created":
                created[key[1]] = carried_row(RowKind.TASK, action, details, None)
        return wanted, created

    async def _read_wanted(self, wanted: dict[tuple[RowKind, str], None]) -> dict[tuple[RowKind, str], object]:
        slots = asyncio.Semaphore(READS_IN_FLIGHT)

        async def read(kind: RowKind, row_id: str) -> object:
            async with slots:
                try:
                    return await self.store.get(kind, row_id)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    return None

        return dict(zip(wanted, await asyncio.gather(*(read(kind, row_id) for kind, row_id in wanted)), strict=True))

    async def _read_dependencies(self, created: dict[str, Any]) -> None:
        """The dependencies of the batch's new tasks (id -> the row, known from the event or read,
        None: gone) that the cache will keep, in one listing (a task the cache drops at once,
        finished history, needs none)."""
        kept = sorted(
            task_id for task_id, row in created.items() if row is not None and self.cache.keeps(RowKind.TASK, row)
        )
        found: dict[str, set[str]] = {task_id: set() for task_id in kept}
        for edge in await self.store.task_dependencies(kept) if kept else []:
            found[edge.task_id].add(edge.depends_on_task_id)
        self._dependencies_ahead, self._dependencies_looked = found, set(created)

    async def _retrying_load(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.load()
                return
            except grpc.aio.AioRpcError as error:
                log.warning("listing live work failed (%s); retrying", error.code().name)
                await asyncio.sleep(backoff.next_delay())

    async def resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                await self.resync()
            except grpc.aio.AioRpcError as error:
                log.warning("periodic resync failed: %s", error.code().name)

    async def resync(self) -> None:
        """Lists again, reads again whatever the cache holds that the lists no longer show, and
        asks every controller to look at every live row once more."""
        before = {
            kind: set(self.cache.table(kind))
            for kind in (RowKind.TASK, RowKind.PHASE, RowKind.AGENT, RowKind.CONVERSATION)
        }
        await self.load(advance=False)
        for kind, ids in before.items():
            for row_id in ids & set(self.cache.table(kind)):
                row = self.cache.table(kind)[row_id]
                self.cache.notify(change_of(kind, row_id, row, row, True))

    async def apply(self, stored: event_pb2.Event, details: dict[str, Any] | None = None) -> None:
        """One event: the row it names as it left it (from its values, or read again), or dropped,
        so the cache follows the store. `details`: the event's, parsed already."""
        entity, _, action = stored.type.partition(":")
        if action not in ("created", "updated", "deleted"):
            return  # the orchestrator's own event types ride with row changes that are applied
        details = _details(stored) if details is None else details
        row_id = str(details.get("id") or "")
        if action == "created" and row_id:
            self._born(entity, row_id, details)
        if entity in ROW_KINDS and row_id:
            await self._apply_row(RowKind(entity), action, row_id, stored.sequence, details)
        elif entity == RowKind.MESSAGE and row_id:
            self.cache.notify(MessageChange(row_id, None, None, True))  # not cached: a reply's news
        elif entity == "initiative_project" and stored.initiative_id in self.cache.initiatives:
            await self.load_projects(stored.initiative_id)
        elif entity == "task_dependency" and stored.task_id in self.cache.tasks:
            await self._apply_dependency(stored.task_id, action, details)
        elif entity == "phase_dependency" and stored.phase_id in self.cache.phases:
            phase = self.cache.phases[stored.phase_id]
            self.cache.notify(PhaseChange(phase.id, phase, phase, True, frozenset({DEPENDENCIES})))

    async def _apply_row(
        self, kind: RowKind, action: str, row_id: str, sequence: int, details: dict[str, object]
    ) -> None:
        cache = self.cache
        if action == "deleted":
            self._drop_cascade(kind, row_id)
            return
        if kind == RowKind.ACCOUNT and action == "updated" and details.get("changed") == ["last_used_time"]:
            return  # an account was handed out: not news for any decision
        if not cache.has_seen(kind, row_id, sequence) and not self._in_batch:
            await self.writer.quiet(OWN_WRITE_WAIT_SECONDS)  # (a batch's events: quiet once, for all)
        if cache.has_seen(kind, row_id, sequence):
            return
        # A new task's dependencies are read before the task, and set as it is cached, with no
        # await between: a dispatch in between would see a task depending on nothing.
        needs = await self._new_task_dependencies(row_id) if kind == RowKind.TASK and action == "created" else None
        carried = carried_row(kind, action, details, cache.table(kind).get(row_id))
        if carried is not None:
            row = self._put_carried(kind, carried, sequence)
        elif (kind, row_id) in self._read_ahead:
            row = self._read_ahead[(kind, row_id)]
            if row is None:
                cache.drop(kind, row_id, external=True)
                return
            cache.put(kind, row, sequence, external=True)
        else:
            row = await self.writer.reread(kind, row_id, sequence, external=True)
        if row is None:
            return
        if needs is not None and row.id in cache.tasks:
            cache.set_dependencies(row.id, needs)
        if kind in (RowKind.TASK, RowKind.PHASE, RowKind.AGENT):
            await self.ensure_initiatives([cache.initiative_id_of(row) if kind == RowKind.TASK else row.initiative_id])
        if kind == RowKind.INITIATIVE and row.id in cache.initiatives and row.id not in cache.initiative_projects:
            await self.load_projects(row.id)

    def _born(self, entity: str, row_id: str, details: dict[str, Any]) -> None:
        """What a created row tells of what follows it in the log (state.py): every agent of a new
        initiative, every task of a new phase, every message to a new agent comes after it."""
        cache = self.cache
        if entity == RowKind.INITIATIVE:
            cache.agents_known.add(row_id)
        elif entity == RowKind.PHASE:
            cache.whole_phases.add(row_id)
        elif entity == RowKind.AGENT:
            cache.born.add(row_id)
        elif entity == RowKind.MESSAGE:
            recipient = _recipient(details)
            if recipient is None:
                cache.born.clear()  # a message to someone unknown: no agent is known to have none
            elif recipient:
                cache.recipients.add(recipient)

    def _carry(self, change: Change) -> None:
        """Keeps what rows carry beyond the live ones (state.py): every agent of a task, and which
        phases' tasks are all held (no longer once the phase leaves the cache with its tasks)."""
        if change.kind == RowKind.AGENT and change.after is not None:
            self.cache.note_agent(change.after)
        elif change.kind == RowKind.PHASE and change.id not in self.cache.phases:
            self.cache.whole_phases.discard(change.id)

    def _put_carried(self, kind: RowKind, row: Any, sequence: int) -> Any:
        """Caches a row built from an event's values, unless the cache holds a newer version (read
        by a listing, or answered to a write of ours, after the event was written)."""
        held = self.cache.table(kind).get(row.id)
        if is_newer(row, held):
            self.cache.put(kind, row, sequence, external=True)
            return row
        self.cache.saw(kind, row.id, sequence)
        return held

    async def _apply_dependency(self, task_id: str, action: str, details: dict[str, Any]) -> None:
        """A new edge of a cached task from its values; any other change of its edges read again."""
        values = details.get("values")
        depends_on = values.get("depends_on_task_id") if isinstance(values, dict) else None
        if action == "created" and isinstance(depends_on, str) and depends_on:
            self.cache.set_dependencies(task_id, self.cache.depends_on.get(task_id, set()) | {depends_on})
        else:
            await self._load_dependencies([task_id])

    def _drop_cascade(self, kind: RowKind, row_id: str) -> None:
        """Rows the database deleted with this one (foreign keys cascade without events)."""
        cache = self.cache
        if kind == RowKind.INITIATIVE:
            for phase in [p for p in cache.phases.values() if p.initiative_id == row_id]:
                self._drop_cascade(RowKind.PHASE, phase.id)
            for task in [t for t in cache.tasks.values() if t.initiative_id == row_id]:
                cache.drop(RowKind.TASK, task.id, external=True)
            cache.initiative_projects.pop(row_id, None)
        elif kind == RowKind.PHASE:
            for task in cache.tasks_of(row_id):
                cache.drop(RowKind.TASK, task.id, external=True)
        elif kind == RowKind.PROJECT:
            for initiative_id in cache.initiatives_using(row_id):
                ids = [pid for pid in cache.initiative_projects[initiative_id] if pid != row_id]
                cache.set_initiative_projects(initiative_id, ids)
        cache.drop(kind, row_id, external=True)


def _details(stored: event_pb2.Event) -> dict[str, Any]:
    return json_format.MessageToDict(stored.details)


def _recipient(details: dict[str, Any]) -> str | None:
    """The agent a created message's event says it was sent to ("" none: a person), None when the
    event does not say (no values, or the value left out)."""
    values, omitted = details.get("values"), details.get("omitted")
    if not isinstance(values, dict) or (isinstance(omitted, list) and "recipient_id" in omitted):
        return None
    recipient = values.get("recipient_id", "")  # an empty field is absent from the values
    return recipient if isinstance(recipient, str) else None


def _row_key(stored: event_pb2.Event, details: dict[str, Any]) -> tuple[RowKind, str] | None:
    """The cached row an event names and the feed would apply (or read again), if any."""
    entity, _, action = stored.type.partition(":")
    if entity not in ROW_KINDS or action not in ("created", "updated"):
        return None
    row_id = details.get("id")
    if not isinstance(row_id, str) or not row_id:
        return None
    if entity == RowKind.ACCOUNT and details.get("changed") == ["last_used_time"]:
        return None
    return RowKind(entity), row_id


async def _batches(stream: AsyncIterator[T], limit: int) -> AsyncGenerator[list[T], None]:
    """What a stream has delivered so far, in order, as lists of at most `limit`: a reader keeps
    receiving while the caller works on the previous batch. A failure of the stream is raised
    after the items that came before it."""
    queue: asyncio.Queue[T | _End] = asyncio.Queue(maxsize=limit)

    async def pump() -> None:
        try:
            async for item in stream:
                await queue.put(item)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nothing waits for an end marker
        except BaseException as error:  # handed over, raised by the consumer
            await queue.put(_End(error))
            return
        await queue.put(_End(None))

    reader = asyncio.create_task(pump(), name="feed-reader")
    try:
        while True:
            batch: list[T] = []
            item = await queue.get()
            while True:
                if isinstance(item, _End):
                    if batch:
                        yield batch
                    if item.error is not None:
                        raise item.error
                    return
                batch.append(item)
                if len(batch) >= limit or queue.empty():
                    break
                item = queue.get_nowait()
            yield batch
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


@dataclass(frozen=True)
class _End:
    """The stream ended: cleanly (`error` None) or with an error."""

    error: BaseException | None
