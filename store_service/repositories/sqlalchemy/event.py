from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store_service.db.models import Event

_HEAD_SQL = f"SELECT max(sequence) FROM {Event.__tablename__}"


def next_sequence(session: Session) -> int:
    """The sequence of the next event: one past the newest. The write transaction holds the
    database's write lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory write lock), so no other
    transaction takes the same number, and commits come in sequence order. A transaction that rolls
    back gives its numbers back: the log has no holes.

    Sent to the driver as it is: it runs in every write that records an event, and compiling it
    each time cost more than the query (bench/store_process.py)."""
    head = session.connection().exec_driver_sql(_HEAD_SQL).scalar()
    return int(head or 0) + 1


class SqlAlchemyEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, event_type: str, details: dict[str, Any], **scope: str | None) -> Event:
        # Changes not flushed yet record their events first: they come before this one.
        self.session.flush()
        scoped = {key: value for key, value in scope.items() if value}
        event = Event(sequence=next_sequence(self.session), type=event_type, details=details, **scoped)
        self.session.add(event)
        self.session.flush()
        return event

    def find_after(
        self, after_sequence: int, limit: int, types: Sequence[str] = (), initiative_id: str | None = None
    ) -> list[Event]:
        query = select(Event).where(Event.sequence > after_sequence)
        if types:
            query = query.where(Event.type.in_(types))
        if initiative_id:
            query = query.where(Event.initiative_id == initiative_id)
        return list(self.session.scalars(query.order_by(Event.sequence).limit(limit)))

    def last_sequence(self) -> int:
        return int(self.session.scalar(select(func.max(Event.sequence))) or 0)
