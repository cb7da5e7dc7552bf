"""A new row written without the ORM's unit-of-work flush: one INSERT compiled once per table and
run on the driver's cursor, with its created event, in the session's transaction.

A flush of one new row costs several times its INSERT (bench/store_floor.py, CreateTask). The
session's flush hooks do for a new row: its id and column defaults, its created event
(db/change_events.py), its update time (the default, as for any new row), the progress invariants
noted (rules/progress.py) and secrets sealed (db/secret_box.py). The direct insert does the first
ones itself and leaves to the flush the rows that need the last two (a row the invariants guard as
it is made, a row with secrets): those are added and flushed as before. Changes not flushed yet
are flushed first, so events keep the order of the writes.

Afterwards the row is in the session as a stored one (persistent), as a flushed row would be: the
rest of the transaction reads it and changes it the same way.
"""

from __future__ import annotations

import functools

from google.protobuf.message import Message
from sqlalchemy import Dialect, bindparam, exc, insert, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from store_service.db.change_events import created_event
from store_service.db.event_log import record_events
from store_service.db.event_values import column_defaults, default_value
from store_service.db.messages import shown_message
from store_service.db.models import Base
from store_service.db.reads import Prepared, compiled_once
from store_service.db.transaction import connection_of
from store_service.rules import progress


@functools.cache
def _insert_row(model: type[Base], dialect: Dialect) -> tuple[Prepared, tuple[tuple[str, str], ...]]:
    """The INSERT of a whole row of `model`, each column a parameter named as the column, and
    (attribute, column) of each."""
    table = model.metadata.tables[model.__tablename__]
    statement = insert(table).values({column.name: bindparam(column.name, type_=column.type) for column in table.c})
    mapper = model.__mapper__
    names = tuple((prop.key, prop.columns[0].name) for prop in mapper.column_attrs)
    return compiled_once(statement, dialect), names


def _fill(row: Base, names: tuple[tuple[str, str], ...]) -> None:
    """Gives each attribute the row was not given the value its INSERT stores: its column's
    default, else NULL (no column has a default only on the server). Set in the row's dict, as a
    load would: the row becomes a stored one right after its INSERT, with no change pending."""
    given = row.__dict__
    for key, default in column_defaults(type(row)):
        if key not in given:
            given[key] = default_value(default)
    for key, _column in names:
        given.setdefault(key, None)


def _direct(row: Base) -> bool:
    return bool(row.event_entity) and not getattr(row, "secret_fields", None)


def add(session: Session, row: Base) -> None:
    """Writes the new `row` in the session's transaction, with its event; the caller maps a
    violated constraint (sqlalchemy.exc.IntegrityError, as a flush raises it)."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    if not _direct(row):
        session.add(row)
        session.flush()
        return
    connection = connection_of(session)
    prepared, names = _insert_row(type(row), connection.dialect)
    _fill(row, names)
    message = shown_message(row)
    event = created_event(row, message)
    if progress.guards_new(row):
        session.add(row)
        session.flush()
        return
    given = row.__dict__
    values = {column: given[key] for key, column in names}
    driver = connection.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(prepared.sql, prepared.arguments(values))
    except connection.dialect.loaded_dbapi.IntegrityError as error:
        raise exc.IntegrityError(prepared.sql, None, error) from error
    finally:
        cursor.close()
    record_events(session, [event])
    make_transient_to_detached(row)
    session.add(row)
    if message is not None and "update_time" in given:
        given[_KEPT] = (message, given["update_time"])


# The row's attribute holding the message its created event was made from, and its update time then.
_KEPT = "_cw_created_message"


def created_message(row: Base) -> Message | None:
    """The message the row's created event was made from, while the row is as it was inserted:
    the answer to its Create is that message, built once. A change since (pending, or flushed:
    every flush that changes a row moves its update time, db/update_times.py) makes it None."""
    kept = row.__dict__.get(_KEPT)
    if kept is None:
        return None
    message, update_time = kept
    if row.__dict__.get("update_time") != update_time or inspect(row).modified:
        return None
    shown: Message = message
    return shown
