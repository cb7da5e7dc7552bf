"""Records a `<entity>:created|updated|deleted` event for every row a flush writes.

Hooked into the session rather than left to each repository, so that no write can forget its event,
and the event always lands in the transaction of the change it records. Details speak the API's
vocabulary: a status is its enum name (`TASK_STATUS_COMPLETED`), as clients read it everywhere else,
and carry the row's new values (event_values.py), so a follower need not read the row again.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from cw.store.v1 import (
    agent_pb2,
    chat_session_pb2,
    conversation_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    proposal_pb2,
    task_pb2,
)
from store_service.db import event_values, update_times
from store_service.db.event_log import record_events
from store_service.db.messages import EnumDescriptor, enum_name
from store_service.db.models import (
    Agent,
    Base,
    ChangeSet,
    ChatSession,
    Conversation,
    Initiative,
    Message,
    Phase,
    Proposal,
    Task,
    new_id,
    utcnow,
)

# The proto enum of every table with a `status` column.
STATUS_ENUMS: dict[type[Base], EnumDescriptor] = {
    Initiative: initiative_pb2.InitiativeStatus.DESCRIPTOR,
    Phase: phase_pb2.PhaseStatus.DESCRIPTOR,
    Task: task_pb2.TaskStatus.DESCRIPTOR,
    Agent: agent_pb2.AgentStatus.DESCRIPTOR,
    Proposal: proposal_pb2.ProposalStatus.DESCRIPTOR,
    Message: message_pb2.MessageStatus.DESCRIPTOR,
    Conversation: conversation_pb2.ConversationStatus.DESCRIPTOR,
    ChatSession: chat_session_pb2.ChatSessionStatus.DESCRIPTOR,
    ChangeSet: chat_session_pb2.ChangeSetStatus.DESCRIPTOR,
}


def changed_fields(row: Base) -> list[str]:
    """Attributes whose value differs from the stored one (`update_time` aside). Only those set
    since the row was loaded (its `committed_state`) can differ, so only those are compared:
    `Session.is_modified` compares every attribute, at several times the cost."""
    state = inspect(row)
    return sorted(
        key for key in state.committed_state if key != "update_time" and state.attrs[key].history.has_changes()
    )


def _event_for(row: Base, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """The events table's columns for one event about `row`."""
    row_id = getattr(row, "id", None)
    scope = {key: value for key, value in row.event_scope().items() if value}
    return {"type": f"{row.event_entity}:{action}", "details": {"id": row_id, **details}, "time": utcnow(), **scope}


def _status_details(row: Base) -> dict[str, Any]:
    status = getattr(row, "status", None)
    return {"status": enum_name(STATUS_ENUMS[type(row)], status)} if status is not None else {}


def created_event(row: Base, message: ProtoMessage | None = None) -> dict[str, Any]:
    """The created event of a new row, which takes its id and column defaults first (they are its
    stored values); `message`: the row's shown message, made from those already."""
    if getattr(row, "id", None) is None:
        row.id = new_id()  # type: ignore[attr-defined]
    values = event_values.created(row, message)  # first: it gives the row its defaults (its status)
    return _event_for(row, "created", {**_status_details(row), **values})


def _record_changes(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    events: list[dict[str, Any]] = []
    for row in session.new:
        if isinstance(row, Base) and row.event_entity:
            events.append(created_event(row))
    for row in session.dirty:
        if isinstance(row, Base) and row.event_entity:
            changed = changed_fields(row)
            if changed:
                details = {"changed": changed, **(_status_details(row) if "status" in changed else {})}
                details |= event_values.updated(row, changed)
                events.append(_event_for(row, "updated", details))
    for row in session.deleted:
        if isinstance(row, Base) and row.event_entity:
            events.append(_event_for(row, "deleted", {}))
    if events:
        record_events(session, events)


def install(session_class: type[Session]) -> None:
    """Hooks the events in; `update_time` is stamped first, so an update's event carries the new one."""
    update_times.install(session_class)
    if not event.contains(session_class, "before_flush", _record_changes):
        event.listen(session_class, "before_flush", _record_changes)
