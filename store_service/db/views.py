"""The read side: paged listings of any table, in creation order, and the filters they take."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Dialect, Select, bindparam, false, func, or_, select

from store_service.db.models import Base, Event, Task, TaskDependency
from store_service.db.reads import Prepared, Reads, Record, columns_of, compiled_once


@dataclass(frozen=True)
class PageCursor:
    """Where a page of a list ends: rows are ordered by creation time, then id."""

    create_time: datetime
    id: str


@dataclass(frozen=True)
class AnyOf:
    """A filter value: the column holds one of these (none matches when empty)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class IsSet:
    """A filter value: the column is set (True) or NULL (False)."""

    expected: bool


def matching(model: type[Base], filters: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """The criteria of a filter mapping: attribute name -> a value (equal), AnyOf or IsSet."""
    criteria = []
    for name, value in filters.items():
        column = getattr(model, name)
        if isinstance(value, AnyOf):
            criteria.append(column.in_(value.values))
        elif isinstance(value, IsSet):
            criteria.append(column.is_not(None) if value.expected else column.is_(None))
        else:
            criteria.append(column == value)
    return criteria


def task_dependency_criteria(
    task_id: str | None = None,
    phase_id: str | None = None,
    initiative_id: str | None = None,
    task_ids: Iterable[str] = (),
) -> list[ColumnElement[bool]]:
    """Edges touching `task_id`, and whose dependent task is in the phase, the initiative and the
    set of ids (each when given)."""
    criteria: list[ColumnElement[bool]] = []
    if task_id:
        criteria.append(or_(TaskDependency.task_id == task_id, TaskDependency.depends_on_task_id == task_id))
    for column, value in ((Task.phase_id, phase_id), (Task.initiative_id, initiative_id)):
        if value:
            criteria.append(TaskDependency.task_id.in_(select(Task.id).where(column == value)))
    ids = list(task_ids)
    if ids:
        criteria.append(TaskDependency.task_id.in_(ids))
    return criteria


def find_page(
    reads: Reads,
    model: type[Base],
    criteria: Sequence[ColumnElement[bool]],
    limit: int,
    after: PageCursor | None,
) -> list[tuple[Any, ...]]:
    """Keyset pagination on (create_time, id): a row inserted while a client pages through the
    list never shifts the rows it has not seen yet. Rows come back as the driver gives them
    (`Reads.stored_rows`; `Shape.decode` makes records of them)."""
    created, row_id = model.create_time, model.id  # type: ignore[attr-defined]
    query = reads.shape(model).select().where(*criteria).order_by(created, row_id).limit(limit)
    if after is not None:
        query = query.where(or_(created > after.create_time, (created == after.create_time) & (row_id > after.id)))
    return reads.stored_rows(query)


# How one filter value restricts its column, for the statement's cache key: ("eq",), ("null",),
# ("in", how many values), ("set", expected).
FilterKind = tuple[Any, ...]


def _kind(value: Any) -> FilterKind:
    if isinstance(value, AnyOf):
        return ("in", len(value.values))
    if isinstance(value, IsSet):
        return ("set", value.expected)
    return ("null",) if value is None else ("eq",)


def _filter_criterion(model: type[Base], position: int, name: str, kind: FilterKind) -> ColumnElement[bool]:
    """`matching`'s criterion for one filter, its values bind parameters `f<position>[_<n>]`."""
    column: ColumnElement[Any] = getattr(model, name)
    if kind[0] == "in":
        values = [bindparam(f"f{position}_{index}", type_=column.type) for index in range(kind[1])]
        return column.in_(values) if values else false()
    if kind[0] == "set":
        return column.is_not(None) if kind[1] else column.is_(None)
    return column.is_(None) if kind[0] == "null" else column == bindparam(f"f{position}", type_=column.type)


@functools.lru_cache(maxsize=1024)
def _page_statement(
    model: type[Base], filters: tuple[tuple[str, FilterKind], ...], after: bool, dialect: Dialect
) -> Prepared:
    """find_page's statement for one shape of filters, compiled once."""
    created, row_id = model.create_time, model.id  # type: ignore[attr-defined]
    criteria = [_filter_criterion(model, position, name, kind) for position, (name, kind) in enumerate(filters)]
    query = select(*columns_of(model)).where(*criteria).order_by(created, row_id).limit(bindparam("limit"))
    if after:
        at = bindparam("after_time", type_=created.type)
        query = query.where(or_(created > at, (created == at) & (row_id > bindparam("after_id", type_=row_id.type))))
    return compiled_once(query, dialect)


def find_filtered_page(
    reads: Reads, model: type[Base], filters: Mapping[str, Any], limit: int, after: PageCursor | None
) -> list[tuple[Any, ...]]:
    """`find_page` with the criteria of `matching(model, filters)`, from a statement compiled once
    per shape of filters and run on the driver's cursor: building and compiling the statement cost
    more than running it (bench/store_floor.py, ListTasks)."""
    shape = tuple((name, _kind(value)) for name, value in filters.items())
    parameters: dict[str, Any] = {"limit": limit}
    for position, value in enumerate(filters.values()):
        if isinstance(value, AnyOf):
            parameters |= {f"f{position}_{index}": item for index, item in enumerate(value.values)}
        elif not isinstance(value, IsSet) and value is not None:
            parameters[f"f{position}"] = value
    if after is not None:
        parameters |= {"after_time": after.create_time, "after_id": after.id}
    statement = _page_statement(model, shape, after is not None, reads.connection.dialect)
    return reads.prepared_rows(statement, parameters)


def events_after(
    reads: Reads,
    after: int,
    limit: int,
    types: Sequence[str] = (),
    initiative_id: str | None = None,
    *,
    until: int | None = None,
) -> list[Record]:
    """Events after the sequence `after` (up to `until`), oldest first, of these types (any when
    empty) and this initiative (any when None)."""
    if not types and not initiative_id and until is None:  # the event feed's read, after every commit
        return reads.prepared_records(Event, _every_event_after, after=after, limit=limit)
    query = reads.shape(Event).select().where(Event.sequence > after)
    if until is not None:
        query = query.where(Event.sequence <= until)
    if types:
        query = query.where(Event.type.in_(types))
    if initiative_id:
        query = query.where(Event.initiative_id == initiative_id)
    return reads.records(Event, query.order_by(Event.sequence).limit(limit))


def _every_event_after() -> Select[Any]:
    query = select(*columns_of(Event)).where(Event.sequence > bindparam("after")).order_by(Event.sequence)
    return query.limit(bindparam("limit"))


def last_sequence(reads: Reads) -> int:
    """The newest event's sequence; 0 for an empty log."""
    return int(reads.scalar(select(func.max(Event.sequence))) or 0)
