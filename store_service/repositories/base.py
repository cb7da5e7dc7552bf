"""The operations every repository port shares."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from store_service.db.models import Base

RowT = TypeVar("RowT", bound=Base)


class Repository(Protocol[RowT]):
    def create(self, **values: Any) -> RowT: ...

    def find_by_id(self, row_id: str) -> RowT | None: ...

    def get(self, row_id: str) -> RowT:
        """Like find_by_id, but raises NotFound."""
        ...

    def update(self, row_id: str, **values: Any) -> RowT: ...

    def delete(self, row_id: str) -> None: ...

    def find_all(self) -> list[RowT]: ...
