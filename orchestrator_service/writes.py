"""How the orchestrator writes: every change carries the row's `update_time` as a precondition, and
every answer's rows go straight into the cache, so its own writes are never read back.

A write built from a stale cached row answers ABORTED (raised here as `Stale`); the writer then
re-reads the rows it meant to change, and the controller decides again from fresh state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    project_pb2,
    task_pb2,
)
from orchestrator_service.cache.state import Cache, RowKind
from orchestrator_service.ports import StorePort
from orchestrator_service.store_client import NotReady, Stale, changed_row, changes

log = logging.getLogger("cw.orchestrator")

_UPDATES: dict[str, tuple[type[Message], type[Message], str]] = {
    "task": (task_pb2.UpdateTaskRequest, task_pb2.Task, "task"),
    "phase": (phase_pb2.UpdatePhaseRequest, phase_pb2.Phase, "phase"),
    "agent": (agent_pb2.UpdateAgentRequest, agent_pb2.Agent, "agent"),
    "initiative": (initiative_pb2.UpdateInitiativeRequest, initiative_pb2.Initiative, "initiative"),
    "project": (project_pb2.UpdateProjectRequest, project_pb2.Project, "project"),
    "account": (account_pb2.UpdateAccountRequest, account_pb2.Account, "account"),
    "conversation": (conversation_pb2.UpdateConversationRequest, conversation_pb2.Conversation, "conversation"),
    "message": (message_pb2.UpdateMessageRequest, message_pb2.Message, "message"),
}
_KIND_OF = {message: kind for kind, (_, message, _) in _UPDATES.items()}


def kind_of(row: Message) -> str:
    return _KIND_OF[type(row)]


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def update(current: Message, **values: Any) -> Message:
    """An Update request for `current`'s row setting `values` (None clears a field), valid only
    while the stored row is still the one read (`expected_update_time`)."""
    request_type, message_type, field = _UPDATES[kind_of(current)]
    row = message_type(id=current.id)  # type: ignore[attr-defined]
    for name, value in values.items():
        if value is None:
            continue
        target = getattr(row, name)
        if isinstance(value, datetime):
            target.CopyFrom(timestamp(value))
        elif isinstance(value, Message):
            target.CopyFrom(value)
        elif isinstance(value, dict):
            target.update(value)
        elif isinstance(value, list):
            target.extend(value)
        else:
            setattr(row, name, value)
    request = request_type(update_mask=field_mask_pb2.FieldMask(paths=list(values)))
    getattr(request, field).CopyFrom(row)
    if "expected_update_time" in request.DESCRIPTOR.fields_by_name:  # a message's has none: its status is set once
        request.expected_update_time.CopyFrom(current.update_time)  # type: ignore[attr-defined]
    return request


class Writer:
    def __init__(self, store: StorePort, cache: Cache) -> None:
        self.store = store
        self.cache = cache
        self._in_flight: set[asyncio.Future[None]] = set()

    async def append(
        self, events: Sequence[event_pb2.Event], requests: Sequence[Message] = ()
    ) -> event_pb2.AppendEventResponse:
        """Writes the changes and events in one transaction and caches the rows they left. On a
        stale precondition, refreshes those rows from the store and raises Stale."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.add(answered)
        try:
            answer = await self.store.append(events, changes(*requests))
        except Stale as stale:
            self._answered(answered)  # it made no event: the feed need not wait for the reads below
            log.info("write refused (%s): reading its rows again", stale)
            if isinstance(stale, NotReady):
                await self._behind_the_store()
            await self.refresh(requests)
            raise
        finally:
            self._answered(answered)
        self.cache.freshness.saw(answer.last_sequence)
        for row in answer.rows:
            kind, message = changed_row(row)
            if self.cache.holds(kind):
                self.cache.put(RowKind(kind), message, answer.last_sequence)
        return answer

    def _answered(self, answered: asyncio.Future[None]) -> None:
        self._in_flight.discard(answered)
        if not answered.done():
            answered.set_result(None)

    async def _behind_the_store(self) -> None:
        """The store refused to move work early: it holds rows the cache does not have yet. The next
        decisions wait until the feed has applied the log as far as the store had it now (the
        queues' freshness gate), rather than taking the same decision from the same cache again."""
        self.cache.freshness.saw(await self.store.head_sequence())

    async def quiet(self, timeout: float) -> None:
        """Waits (a little) for the writes in flight now to be answered: an event of our own write
        can arrive before its answer, and the answer already carries the row, so no read is needed.
        Writes sent later cannot have made the event: under a steady stream of our own writes the
        feed does not wait for a moment with none in flight."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    async def refresh(self, requests: Sequence[Message]) -> None:
        for request in requests:
            kind = next((k for k, (t, _, _) in _UPDATES.items() if isinstance(request, t)), None)
            if kind is None or not self.cache.holds(kind):
                continue  # a message is not cached (nor read by kind)
            row_id = getattr(request, _UPDATES[kind][2]).id
            await self.reread(RowKind(kind), row_id)

    async def reread(self, kind: RowKind, row_id: str, sequence: int = 0, external: bool = False) -> Any:
        """The row as stored now, into the cache; gone from the cache when it no longer exists."""
        try:
            row = await self.store.get(kind, row_id)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            self.cache.drop(kind, row_id, external=external)
            return None
        self.cache.put(kind, row, sequence, external=external)
        return row


__all__ = ["NotReady", "Stale", "Writer", "kind_of", "timestamp", "update"]
