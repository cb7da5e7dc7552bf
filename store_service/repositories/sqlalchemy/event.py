from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store_service.db.event_log import head_sequence, record_events
from store_service.db.models import Event, utcnow


class SqlAlchemyEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, event_type: str, details: dict[str, Any], **scope: str | None) -> Event:
        """Records one event; returns it as an Event the session does not hold (events are never
        changed once written)."""
        # Changes not flushed yet record their events first: they come before this one.
        self.session.flush()
        values = {"type": event_type, "details": details, "time": utcnow()}
        values |= {key: value for key, value in scope.items() if value}
        record_events(self.session, [values])
        return Event(**values)

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
        return head_sequence(self.session)
