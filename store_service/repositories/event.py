from collections.abc import Sequence
from typing import Any, Protocol

from store_service.db.models import Event


class EventRepository(Protocol):
    def append(self, event_type: str, details: dict[str, Any], **scope: str | None) -> Event: ...

    def find_after(
        self, after_sequence: int, limit: int, types: Sequence[str] = (), initiative_id: str | None = None
    ) -> list[Event]: ...

    def last_sequence(self) -> int: ...
