"""The read side: paged listings of any table, in creation order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store_service.db.models import Base
from store_service.repositories.base import PageCursor

RowT = TypeVar("RowT", bound=Base)


def find_page(
    session: Session, model: type[RowT], filters: Mapping[str, Any], limit: int, after: PageCursor | None
) -> list[RowT]:
    """Keyset pagination on (create_time, id): a row inserted while a client pages through the
    list never shifts the rows it has not seen yet."""
    created, row_id = model.create_time, model.id  # type: ignore[attr-defined]
    query = select(model).filter_by(**filters).order_by(created, row_id).limit(limit)
    if after is not None:
        query = query.where(or_(created > after.create_time, (created == after.create_time) & (row_id > after.id)))
    return list(session.scalars(query))
