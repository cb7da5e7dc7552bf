"""A few columns of one stored row, read inside a write's transaction for the checks the rules make
before a write (store_service/rules/consistency.py, the repositories' reference checks).

`Session.get` loads a whole ORM row through the ORM's statement machinery, and a row nothing holds
leaves the session's identity map at once (it keeps rows weakly): a CreateTask with a phase loaded
its phase twice and its initiative once, which cost more than the task's INSERT and its commit
together (bench/store_floor.py, CreateTask). These reads give what `Session.get` would: a row the
session holds is read from it; with changes not flushed yet, `Session.get` itself answers (it
flushes them first); otherwise one SELECT compiled once runs on the driver's cursor, in the
session's transaction.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Dialect, bindparam, select
from sqlalchemy.orm import Session

from store_service.db.models import Base
from store_service.db.reads import Prepared, compiled_once
from store_service.db.transaction import connection_of


@functools.cache
def _select(model: type[Base], names: tuple[str, ...], dialect: Dialect) -> tuple[Prepared, tuple[Any, ...]]:
    """SELECT `names` of the row whose id is the parameter `key`, and each column's result
    processor (None: the driver's value is the stored one)."""
    columns = [getattr(model, name) for name in names]
    statement = select(*columns).where(model.id == bindparam("key"))  # type: ignore[attr-defined]
    processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return compiled_once(statement, dialect), processors


def stored(session: Session, model: type[Base], key: Any, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The values of `names` of the row of `model` with id `key` as this transaction sees it; None
    when there is none."""
    if session.new or session.dirty or session.deleted:
        return _of(session.get(model, key), names)
    held = session.identity_map.get(model.__mapper__.identity_key_from_primary_key((key,)))
    if held is not None:
        return _of(held, names)
    connection = connection_of(session)
    prepared, processors = _select(model, names, connection.dialect)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        found = cursor.execute(prepared.sql, prepared.arguments({"key": key})).fetchone()
    finally:
        cursor.close()
    if found is None:
        return None
    return tuple(value if process is None else process(value) for value, process in zip(found, processors, strict=True))


def exists(session: Session, model: type[Base], key: Any) -> bool:
    return stored(session, model, key, ("id",)) is not None


def _of(row: Base | None, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    return None if row is None else tuple(getattr(row, name) for name in names)
