"""EventService: the durable log, replayed then followed (the fan-out is api/event_feed.py), and
events the orchestrator appends."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from cw.store.v1 import event_pb2, event_pb2_grpc
from cw_edge.interceptor import current_identity
from cw_edge.tokens import Identity
from store_service.api import limits
from store_service.api.account import ACCOUNT
from store_service.api.agent import AGENT
from store_service.api.conversation import CONVERSATION
from store_service.api.crud import Resource, read_create, read_update, required_id
from store_service.api.event_feed import EventFeed, EventFilter, event_message
from store_service.api.initiative import INITIATIVE
from store_service.api.message import MESSAGE
from store_service.api.pagination import SizedPage, page_size
from store_service.api.phase import PHASE
from store_service.api.project import PROJECT
from store_service.api.proposal import PROPOSAL
from store_service.api.review_comment import REVIEW_COMMENT
from store_service.api.send_budget import budget_for
from store_service.api.task import TASK
from store_service.database import Database
from store_service.db.models import Base
from store_service.db.reads import Reads
from store_service.db.views import events_after, last_sequence
from store_service.domain.errors import InvalidArgument, OutOfRange, ResourceExhausted
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.writes import changes

DEFAULT_HEARTBEAT_SECONDS = 15.0
MIN_HEARTBEAT_SECONDS = 0.05
# Open WatchEvents streams per identity (the client token, the orchestrator's). Streams are cheap
# (api/event_feed.py), but each holds a queue of up to event_feed.QUEUE_BYTES.
MAX_STREAMS_PER_IDENTITY = 256


_CHANGES: dict[str, tuple[Resource[Any], str]] = {
    "update_task": (TASK, "update"),
    "update_phase": (PHASE, "update"),
    "update_agent": (AGENT, "update"),
    "update_initiative": (INITIATIVE, "update"),
    "create_agent": (AGENT, "create"),
    "update_account": (ACCOUNT, "update"),
    "update_project": (PROJECT, "update"),
    "create_proposal": (PROPOSAL, "create"),
    "create_task": (TASK, "create"),
    "create_conversation": (CONVERSATION, "create"),
    "answer_conversation": (CONVERSATION, "answer"),
    "create_review_comment": (REVIEW_COMMENT, "create"),
    "resolve_review_comment": (REVIEW_COMMENT, "resolve"),
    "create_message": (MESSAGE, "create"),
    "update_conversation": (CONVERSATION, "update"),
    "update_message": (MESSAGE, "update"),
}


@dataclass(frozen=True)
class _Answer:
    conversation_id: str
    answer: str
    where: str

    def apply(self, uow: SqlAlchemyUnitOfWork, _identity: Identity | None) -> Base:
        return changes.answer_conversation(uow, self.conversation_id, self.answer, self.where)


@dataclass(frozen=True)
class _Resolve:
    comment_id: str

    def apply(self, uow: SqlAlchemyUnitOfWork, _identity: Identity | None) -> Base:
        return changes.resolve_review_comment(uow, self.comment_id)


@dataclass(frozen=True)
class _Change:
    """One StateChange, read and validated before the transaction starts; applied in it by the
    same code as the resource's own RPC (store_service/writes/changes.py)."""

    resource: Resource[Any]
    action: str  # create, update, answer (a conversation) or resolve (a review comment)
    write: changes.Create | changes.Update | _Answer | _Resolve

    def changed_row(self, row: Base) -> event_pb2.ChangedRow:
        """The row as this change left it; ChangedRow's fields are named like the request's."""
        return event_pb2.ChangedRow(**{self.resource.field: self.resource.to_message(row)})


def _prepare_change(index: int, change: event_pb2.StateChange) -> _Change:
    kind = change.WhichOneof("change")
    if kind is None:
        raise InvalidArgument.of(f"changes[{index}]", "names no change")
    if kind not in _CHANGES:
        raise InvalidArgument.of(f"changes[{index}].{kind}", "is not a change this store applies")
    resource, action = _CHANGES[kind]
    request = getattr(change, kind)
    where = f"changes[{index}].{kind}."
    if action == "create":
        return _Change(resource, action, read_create(resource, request, where))
    if action == "update":
        return _Change(resource, action, read_update(resource, request, where))
    row_id = required_id(request.id, f"{where}id")
    if action == "answer":
        return _Change(resource, action, _Answer(row_id, request.answer, where))
    return _Change(resource, action, _Resolve(row_id))


class EventServicer(event_pb2_grpc.EventServiceServicer):
    def __init__(self, db: Database, feed: EventFeed) -> None:
        self.db = db
        self.feed = feed
        self._open_streams: collections.Counter[Identity | None] = collections.Counter()
        self._budgets = {identity: budget_for(identity) for identity in (*Identity, None)}

    async def _check_cursor(self, after_sequence: int) -> None:
        """A cursor beyond the log's end was not issued by this store (another database, or a typo)."""
        if after_sequence < 0:
            raise InvalidArgument.of("after_sequence", "must not be negative")
        last = await self.db.fetch(last_sequence)
        if after_sequence > last:
            raise OutOfRange(f"after_sequence {after_sequence} is beyond the last event {last}")

    @contextlib.contextmanager
    def _stream_slot(self, identity: Identity | None) -> Iterator[None]:
        if self._open_streams[identity] >= MAX_STREAMS_PER_IDENTITY:
            raise ResourceExhausted(
                f"{MAX_STREAMS_PER_IDENTITY} WatchEvents streams are open for this token already, "
                "the most one identity may hold: close one first (one stream can follow any set of types)",
                limit=str(MAX_STREAMS_PER_IDENTITY),
            )
        self._open_streams[identity] += 1
        try:
            yield
        finally:
            self._open_streams[identity] -= 1

    async def WatchEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        """Yields each event as bytes: the feed serializes it once for every stream it goes to."""
        identity = current_identity()
        with self._stream_slot(identity):
            await self._check_cursor(request.after_sequence)
            heartbeat = DEFAULT_HEARTBEAT_SECONDS
            if request.HasField("heartbeat_interval"):
                heartbeat = max(request.heartbeat_interval.ToTimedelta().total_seconds(), MIN_HEARTBEAT_SECONDS)
            wanted = EventFilter(frozenset(request.types), request.initiative_id or None)
            async for payload in self.feed.follow(request.after_sequence, wanted, heartbeat, self._budgets[identity]):
                yield payload

    async def ListEvents(self, request: Any, _context: Any) -> event_pb2.ListEventsResponse:
        await self._check_cursor(request.after_sequence)
        limit = page_size(request.page_size)
        types, initiative_id = list(request.types), request.initiative_id or None

        def work(reads: Reads) -> event_pb2.ListEventsResponse:
            page = SizedPage(limit)
            for row in events_after(reads, request.after_sequence, limit, types, initiative_id):
                if not page.offer(event_message(row), row.sequence):
                    break
            return event_pb2.ListEventsResponse(
                events=page.messages,
                last_sequence=page.last or request.after_sequence,
                head_sequence=last_sequence(reads),
            )

        return await self.db.fetch(work)

    async def AppendEvent(self, request: Any, _context: Any) -> event_pb2.AppendEventResponse:
        if not request.events and not request.changes:
            raise InvalidArgument.of("events", "must hold at least one event when there are no changes")
        for index, event in enumerate(request.events):
            if not event.type:
                raise InvalidArgument.of(f"events[{index}].type", "is required")
        changes = [_prepare_change(index, change) for index, change in enumerate(request.changes)]
        identity = current_identity()

        def work(uow: SqlAlchemyUnitOfWork) -> event_pb2.AppendEventResponse:
            sequence_before = uow.events.last_sequence()
            created, changed = [], []
            for change in changes:
                row = change.write.apply(uow, identity)
                if change.action == "create":
                    created.append(row.id)  # type: ignore[attr-defined]
                changed.append(change.changed_row(row))
            appended = [
                uow.events.append(
                    event.type,
                    json_format.MessageToDict(event.details),
                    initiative_id=event.initiative_id or None,
                    phase_id=event.phase_id or None,
                    task_id=event.task_id or None,
                    agent_id=event.agent_id or None,
                )
                for event in request.events
            ]
            # The writer holds the database's write lock: every sequence past `sequence_before` is ours.
            last = uow.events.last_sequence()
            answer = event_pb2.AppendEventResponse(
                events=[event_message(row) for row in appended],
                created_ids=created,
                rows=changed,
                last_sequence=last if last > sequence_before else 0,
            )
            limits.check_answer(answer, "changes")
            return answer

        return await self.db.write(work)
