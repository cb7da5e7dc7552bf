"""Records a `<entity>:created|updated|deleted` event for every row a flush writes.

Hooked into the session rather than left to each repository, so that no write can forget its event,
and the event always lands in the transaction of the change it records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from store_service.db.models import Base, Event, new_id


def _changed_fields(row: Base) -> list[str]:
    state = inspect(row)
    return sorted(attr.key for attr in state.attrs if attr.key != "update_time" and attr.history.has_changes())


def _event_for(row: Base, action: str, details: dict[str, Any]) -> Event:
    row_id = getattr(row, "id", None)
    scope = {key: value for key, value in row.event_scope().items() if value}
    return Event(type=f"{row.event_entity}:{action}", details={"id": row_id, **details}, **scope)


def _status_details(row: Base) -> dict[str, Any]:
    status = getattr(row, "status", None)
    return {"status": status} if status is not None else {}


def _record_changes(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    events: list[Event] = []
    for row in session.new:
        if isinstance(row, Base) and row.event_entity:
            if getattr(row, "id", None) is None:
                row.id = new_id()  # type: ignore[attr-defined]
            events.append(_event_for(row, "created", _status_details(row)))
    for row in session.dirty:
        if isinstance(row, Base) and row.event_entity and session.is_modified(row):
            changed = _changed_fields(row)
            if changed:
                details = {"changed": changed, **(_status_details(row) if "status" in changed else {})}
                events.append(_event_for(row, "updated", details))
    for row in session.deleted:
        if isinstance(row, Base) and row.event_entity:
            events.append(_event_for(row, "deleted", {}))
    session.add_all(events)


def install(session_class: type[Session]) -> None:
    if not event.contains(session_class, "before_flush", _record_changes):
        event.listen(session_class, "before_flush", _record_changes)
