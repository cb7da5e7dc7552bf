"""Stamps `update_time` on every row a flush changes, strictly increasing per row.

So it works as an etag (`expected_update_time` on the Update requests): two writes to one row in the
same clock tick, or across a clock that stepped back, still give two different times. Hooked into
the session, like the change events, so that no write path can forget it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from store_service.db.models import Base, utcnow

# The finest step a stored time and a proto Timestamp both keep exactly.
TICK = timedelta(microseconds=1)


def next_update_time(stored: datetime | None, now: datetime) -> datetime:
    """Now, unless that would not move past the stored time."""
    return now if stored is None or now > stored else stored + TICK


def _stored_update_time(row: Base) -> datetime | None:
    history = inspect(row).attrs.update_time.history
    stored = history.deleted or history.unchanged
    return stored[0] if stored else None


def _is_changed(row: Base) -> bool:
    """Some attribute differs from the stored value: only those set since the row was loaded (its
    `committed_state`) can, so only those are compared (`Session.is_modified` compares every
    attribute, at several times the cost)."""
    state = inspect(row)
    return any(state.attrs[key].history.has_changes() for key in state.committed_state)


def _stamp_changed_rows(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for row in session.dirty:
        if isinstance(row, Base) and "update_time" in row.__mapper__.attrs and _is_changed(row):
            row.update_time = next_update_time(_stored_update_time(row), utcnow())  # type: ignore[attr-defined]


def install(session_class: type[Session]) -> None:
    if not event.contains(session_class, "before_flush", _stamp_changed_rows):
        event.listen(session_class, "before_flush", _stamp_changed_rows)
