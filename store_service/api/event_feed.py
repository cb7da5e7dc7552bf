"""WatchEvents' fan-out: one reader of new events for every open stream.

After each commit the feed reads the new events once (one query however many streams are open),
serializes each event once, and hands the bytes to every stream whose filter it matches, through a
bounded queue per stream; a stream's wake-up costs one future, set once per batch of events.

A stream that does not keep up (its queue full: its client stopped reading, so its handler waits on
gRPC's flow control) is detached: the feed forgets it, so from then on it costs nothing but the
queue it holds. When it reads again, it drains that queue, catches up from the database by its
cursor and subscribes anew. Every stream therefore gets every event it asked for exactly once and
in sequence order, whether it kept up or fell behind: events reach the log in commit order (one
writer at a time, on PostgreSQL across every replica: db/postgres.py), the feed publishes them in
that order, and a stream passes on only sequences above the last it passed on.

The feed reads after this store's own commits and, on PostgreSQL, after every replica's (LISTEN):
a stream on any replica sees every event, whichever replica wrote it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from cw.store.v1 import event_pb2
from store_service.api import convert
from store_service.api.limits import KIB
from store_service.api.send_budget import SendBudget
from store_service.database import Database
from store_service.db.reads import Reads, Record
from store_service.db.views import events_after, last_sequence

log = logging.getLogger("cw.store.events")

# A stream's queue holds at most this many events, and this many bytes of them; beyond either, the
# stream is detached and later catches up from the database.
QUEUE_EVENTS = 512
QUEUE_BYTES = 128 * KIB
# Events read at once, by the feed and by a stream catching up.
READ_BATCH = 500
# Streams the feed wakes in one turn of the event loop; then it lets other calls run.
WAKE_AT_ONCE = 8
# After a failed read of new events, the feed tries again after this long.
RETRY_SECONDS = 0.1


def event_message(row: Record) -> event_pb2.Event:
    """The message of an event row (a record or an ORM row)."""
    return event_pb2.Event(
        sequence=row.sequence,
        type=row.type,
        time=convert.timestamp_of(row.time),
        initiative_id=row.initiative_id or "",
        phase_id=row.phase_id or "",
        task_id=row.task_id or "",
        agent_id=row.agent_id or "",
        details=convert.struct_from_dict(row.details or {}),
    )


def heartbeat() -> bytes:
    message = event_pb2.Event(type="heartbeat")
    message.time.GetCurrentTime()
    return message.SerializeToString()


@dataclass(frozen=True)
class EventFilter:
    """What a stream asked for: these types (all when empty), this initiative's events (all when
    None)."""

    types: frozenset[str] = frozenset()
    initiative_id: str | None = None

    def matches(self, row: Record) -> bool:
        return (not self.types or row.type in self.types) and (
            self.initiative_id is None or row.initiative_id == self.initiative_id
        )


class Subscription:
    """One stream's bounded queue of the serialized events published after `start`."""

    def __init__(self, wanted: EventFilter, start: int) -> None:
        self.wanted, self.start = wanted, start
        self.queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self.size = 0
        # The feed forgot this stream (its queue overflowed, or the feed stopped).
        self.detached = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, sequence: int, payload: bytes) -> bool:
        """Queues one event; False, and detached, when the queue is full."""
        if len(self.queue) >= QUEUE_EVENTS or self.size + len(payload) > QUEUE_BYTES:
            self.detach()
            return False
        self.queue.append((sequence, payload))
        self.size += len(payload)
        self._wake()
        return True

    def detach(self) -> None:
        self.detached = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _settle(self._waiter)

    async def wait(self, timeout: float) -> bool:
        """True once there is something to take or the subscription is detached; False after
        `timeout` seconds of nothing. A plain timer rather than `asyncio.timeout`, which cost more
        than the rest of a stream's wake-up (bench/store_process.py, fan-out)."""
        if self.queue or self.detached:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self.queue) or self.detached

    def take(self) -> list[tuple[int, bytes]]:
        taken = list(self.queue)
        self.queue.clear()
        self.size = 0
        return taken


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventFeed:
    """Publishes new events to the subscribed streams; `follow` is one stream's whole life."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscriptions: set[Subscription] = set()
        # The highest sequence published (every event up to it has reached the subscriptions).
        self.position = 0
        # Streams detached so far because they fell behind (their queue was full).
        self.detached = 0
        self.closed = False
        self._new_commit = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Commits went by while no stream listened: `position` may be older than the log's head.
        self._behind = False
        # Held while `position` moves (publishing, or jumping to the head) and while a stream
        # subscribes: a stream subscribes at a position whose events every subscriber got. Reads
        # on PostgreSQL await a reader thread, so without it a stream could subscribe at a position
        # that a head read in flight then jumps past, and miss the events between.
        self._moving = asyncio.Lock()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.position = await self._db.fetch(last_sequence)
        self._task = self._loop.create_task(self._run())
        notifications = self._db.commit_notifications()
        if notifications is not None:
            self._listener = self._loop.create_task(self._wake_on(notifications))

    async def _wake_on(self, notifications: AsyncIterator[None]) -> None:
        """Commits by other processes (every replica's, on PostgreSQL) wake the feed as this
        store's own do."""
        async for _ in notifications:
            self._new_commit.set()

    def committed(self) -> None:
        """Called on the event loop after each commit of this store's writer (Database.on_commit),
        once the write's caller has its answer; many commits before the feed runs cost one read.
        With no stream subscribed there is nothing to read: the feed only notes that it is behind,
        and the next stream to subscribe reads the log's head first (`_subscribe`, which reads it
        again if a commit is told while it reads)."""
        if self._subscriptions:
            self._new_commit.set()
        else:
            self._behind = True

    def close(self) -> None:
        """Shutting down: every stream ends."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription.detach()
        self._subscriptions.clear()
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()

    async def _run(self) -> None:
        while not self.closed:
            await self._new_commit.wait()
            self._new_commit.clear()
            if not self._subscriptions:
                # Nobody to publish to: no read. The next stream to subscribe learns the head first.
                self._behind = True
                continue
            # The commit that woke us also woke its writer's handler: let it answer first, so a
            # write never waits for its own fan-out.
            await asyncio.sleep(0)
            try:
                async with self._moving:
                    await self._publish_new()
            except Exception:
                # The streams catch up from the database by themselves; the next commit retries.
                log.exception("reading new events failed; streams catch up from the database")
                self._detach_all()
                self._new_commit.set()
                await asyncio.sleep(RETRY_SECONDS)

    async def _publish_new(self) -> None:
        while True:
            rows = await self._db.fetch(functools.partial(events_after, after=self.position, limit=READ_BATCH))
            if rows:
                await self._publish(rows)
            if len(rows) < READ_BATCH:
                return

    async def _publish(self, rows: Sequence[Record]) -> None:
        """Hands `rows` to the streams they match, WAKE_AT_ONCE streams per turn of the event loop,
        so that other calls get their turns in between, however many streams are open. A stream
        that subscribes meanwhile starts after these rows (it reads them from the database)."""
        payloads = [(row, event_message(row).SerializeToString()) for row in rows]
        self.position = rows[-1].sequence
        targets = list(self._subscriptions)
        for first in range(0, len(targets), WAKE_AT_ONCE):
            if first:
                await asyncio.sleep(0)
            for subscription in targets[first : first + WAKE_AT_ONCE]:
                self._offer(subscription, payloads)

    def _offer(self, subscription: Subscription, payloads: list[tuple[Record, bytes]]) -> None:
        for row, payload in payloads:
            if subscription.detached:
                return
            if subscription.wanted.matches(row) and not subscription.offer(row.sequence, payload):
                self._subscriptions.discard(subscription)
                self.detached += 1
                log.debug("a stream fell behind (its queue is full): detached, it catches up from the log")

    def _detach_all(self) -> None:
        for subscription in self._subscriptions:
            subscription.detach()
        self._subscriptions.clear()

    async def _subscribe(self, wanted: EventFilter) -> Subscription:
        """A subscription starting at `position`. After commits no stream listened to, `position`
        first becomes the log's head (a commit during the read sets `_behind` again, and the head is
        read again): `_behind` is set only while no stream is subscribed, so no subscriber misses
        the events jumped over."""
        async with self._moving:
            while self._behind:
                self._behind = False
                self.position = max(self.position, await self._db.fetch(last_sequence))
            subscription = Subscription(wanted, self.position)
            self._subscriptions.add(subscription)
            return subscription

    async def follow(
        self, cursor: int, wanted: EventFilter, heartbeat_seconds: float, budget: SendBudget
    ) -> AsyncIterator[bytes]:
        """Every event after `cursor` that `wanted` matches, serialized, replayed then followed,
        each within `budget`; a heartbeat after `heartbeat_seconds` without one. Ends when the feed
        closes."""
        while not self.closed:
            subscription = await self._subscribe(wanted)
            try:
                async for sequence, payload in self._catch_up(cursor, subscription.start, wanted):
                    await budget.spend()
                    cursor = sequence
                    yield payload
                cursor = max(cursor, subscription.start)
                while not subscription.detached or subscription.queue:
                    if not await subscription.wait(heartbeat_seconds):
                        yield heartbeat()
                        continue
                    for sequence, payload in subscription.take():
                        if sequence > cursor:
                            await budget.spend()
                            cursor = sequence
                            yield payload
            finally:
                self._subscriptions.discard(subscription)

    async def _catch_up(self, cursor: int, until: int, wanted: EventFilter) -> AsyncIterator[tuple[int, bytes]]:
        """The events in (cursor, until] that `wanted` matches, from the database."""
        while cursor < until:
            read = functools.partial(_wanted_events, after=cursor, until=until, wanted=wanted)
            rows = await self._db.fetch(read)
            for row in rows:
                yield row.sequence, event_message(row).SerializeToString()
            if len(rows) < READ_BATCH:
                return
            cursor = rows[-1].sequence


def _wanted_events(reads: Reads, after: int, until: int, wanted: EventFilter) -> list[Any]:
    return events_after(reads, after, READ_BATCH, sorted(wanted.types), wanted.initiative_id, until=until)
