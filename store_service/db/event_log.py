"""The events table's log: the next sequence and the plain INSERT of events, in the caller's
transaction. Used by the change events of every flush (change_events.py) and by the event
repository (events a caller appends)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, insert
from sqlalchemy.orm import Session

from store_service.db.models import Event
from store_service.db.reads import Prepared, compiled_once
from store_service.db.transaction import connection_of

_HEAD_SQL = f"SELECT max(sequence) FROM {Event.__tablename__}"


@functools.cache
def _insert_events(dialect: Dialect) -> Prepared:
    """INSERT of one event, every column a parameter, compiled once for the dialect and run on the
    driver's cursor: SQLAlchemy's execution of it cost more than the insert (bench/store_floor.py,
    CreateTask). Its bind processors still encode what the driver cannot take as it is (SQLite's
    datetimes, the JSON details)."""
    table = Event.metadata.tables[Event.__tablename__]
    statement = insert(table).values({column.name: bindparam(column.name, type_=column.type) for column in table.c})
    return compiled_once(statement, dialect)


def next_sequence(session: Session) -> int:
    """The sequence of the next event: one past the newest. The write transaction holds the
    database's write lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory write lock), so no other
    transaction takes the same number, and commits come in sequence order. A transaction that rolls
    back gives its numbers back: the log has no holes.

    Sent to the driver as it is: it runs in every write that records an event, and compiling it
    each time cost more than the query (bench/store_process.py)."""
    return head_sequence(session) + 1


_NO_SCOPE: dict[str, Any] = dict.fromkeys(("initiative_id", "phase_id", "task_id", "agent_id"))


def record_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Inserts `events` (each the events table's columns but `sequence`), numbered in their order
    after the newest, in the session's transaction: a plain INSERT, no ORM instance."""
    connection = connection_of(session)
    first = _head(connection) + 1
    for offset, row in enumerate(events):
        row["sequence"] = first + offset
    # One INSERT for them all takes its columns from the first event: every event names every
    # scope column, so one event's scope is neither dropped nor asked of another.
    insert_events = _insert_events(connection.dialect)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(insert_events.sql, [insert_events.arguments(_NO_SCOPE | row) for row in events])
    finally:
        cursor.close()


def head_sequence(session: Session) -> int:
    """The newest event's sequence in this transaction's view; 0 for an empty log."""
    return _head(connection_of(session))


def _head(connection: Connection) -> int:
    """On the driver's cursor, inside the transaction SQLAlchemy began on this connection: the
    statement has no parameters and one number for an answer, and SQLAlchemy's execution cost
    more than the query (bench/store_floor.py, CreateTask)."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return int(cursor.execute(_HEAD_SQL).fetchone()[0] or 0)
    finally:
        cursor.close()
