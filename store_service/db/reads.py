"""The read side without the ORM: whole rows as named tuples ("records"), read with statements that
SQLAlchemy compiles once.

A record carries the model's attribute names (`create_time`, not the column `created_at`) and the
values the ORM would give (SQLAlchemy's own result processors decode them: datetimes, JSON,
booleans), so `convert.to_message` turns a record and an ORM row into the same message. What it
saves: the session, the identity map and an instance with its state per row; a read by primary key
costs the query and a tuple.

Writes never use this module: they go through the unit of work, whose session hooks record events,
stamp update times and seal secrets.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ClauseElement, ColumnElement, Connection, Dialect, Float, Select, bindparam, select
from sqlalchemy.sql.compiler import SQLCompiler

from store_service.db.models import Base

# A named tuple of one model's attributes, in the model's column order.
Record = Any


@dataclass(frozen=True)
class Shape:
    """How one table's rows become records."""

    model: type[Base]
    columns: tuple[ColumnElement[Any], ...]
    record: Callable[..., Record]
    # (position, SQLAlchemy's result processor) of the columns whose stored value needs decoding.
    decoders: tuple[tuple[int, Callable[[Any], Any]], ...]
    # SELECT <every column> FROM <table> WHERE <primary key> = <the key>, compiled for the dialect,
    # and whether the driver takes that parameter by position (SQLite's `?`) or by name
    # (psycopg's `%(key)s`).
    by_key_sql: str
    by_key_positional: bool

    def key_parameters(self, key: Any) -> tuple[Any, ...] | dict[str, Any]:
        return (key,) if self.by_key_positional else {"key": key}

    def decode(self, stored: Sequence[Any]) -> Record:
        values = list(stored)
        for position, decoder in self.decoders:
            values[position] = decoder(values[position])
        return self.record._make(values)  # type: ignore[attr-defined]

    def select(self) -> Select[Any]:
        """Every column of the table, to narrow with `where`, `order_by`, `limit`; run it with
        `Reads.records`."""
        return select(*self.columns)


def columns_of(model: type[Base]) -> tuple[ColumnElement[Any], ...]:
    """Every column of the model's table, in the order of a record's fields."""
    return tuple(attribute.columns[0] for attribute in model.__mapper__.column_attrs)


@functools.cache
def shape(model: type[Base], dialect: Dialect) -> Shape:
    attributes = list(model.__mapper__.column_attrs)
    columns = columns_of(model)
    record = namedtuple(f"{model.__name__}Record", [attribute.key for attribute in attributes])  # type: ignore[misc]
    decoders = []
    for position, column in enumerate(columns):
        if isinstance(column.type, Float) and not column.type.asdecimal:
            continue  # both drivers answer floats; psycopg's processor wants the column's type code
        decoder = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if decoder is not None:
            decoders.append((position, decoder))
    (key,) = model.__mapper__.primary_key
    by_key = select(*columns).where(key == bindparam("key")).compile(dialect=dialect)
    return Shape(model, columns, record, tuple(decoders), by_key.string, by_key.positional)


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once for a dialect: its SQL, the order of its parameters when the
    driver takes them by position (None: by name), the values of the parameters the compiler added
    itself (SQLite's `OFFSET` after a `LIMIT`), and the bind processors of the typed parameters
    (SQLite's datetimes are stored as text of SQLAlchemy's format)."""

    sql: str
    order: tuple[str, ...] | None
    defaults: dict[str, Any]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...] = ()

    def arguments(self, given: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = self.defaults | given
        for name, process in self.processors:
            if name in values:
                values[name] = process(values[name])
        return values if self.order is None else tuple(values[name] for name in self.order)


def compiled_once(statement: ClauseElement, dialect: Dialect) -> Prepared:
    """`statement` compiled for the dialect, to be run on the driver's cursor (`Reads.prepared_rows`)."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    processors = []
    for name, parameter in compiled.binds.items():
        process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    return Prepared(compiled.string, order, dict(compiled.params), tuple(processors))


@functools.cache
def prepared(build: Callable[[], Select[Any]], dialect: Dialect) -> Prepared:
    """The statement `build` makes, compiled for the dialect."""
    return compiled_once(build(), dialect)


class Reads:
    """Reads on one connection; the caller ends the read transaction (`Database.fetch` does)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def shape(self, model: type[Base]) -> Shape:
        return shape(model, self.connection.dialect)

    def get(self, model: type[Base], key: Any) -> Record | None:
        """The row with this primary key, as a record."""
        stored = self.stored(model, key)
        return None if stored is None else self.shape(model).decode(stored)

    def stored(self, model: type[Base], key: Any) -> tuple[Any, ...] | None:
        """The row with this primary key as the driver gives it: one cached statement on the
        driver's own cursor."""
        found = self.shape(model)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # Read to the end: the statement is then done, so it holds no read transaction open.
        rows = cursor.execute(found.by_key_sql, found.key_parameters(key)).fetchall()
        return tuple(rows[0]) if rows else None

    def records(self, model: type[Base], statement: Select[Any]) -> list[Record]:
        """The rows of a statement built on `shape(model).select()`, as records."""
        make = self.shape(model).record._make  # type: ignore[attr-defined]
        return [make(row) for row in self.connection.execute(statement)]

    def stored_rows(self, statement: Select[Any]) -> list[tuple[Any, ...]]:
        """The rows of a statement built on `shape(model).select()` as the driver gives them,
        undecoded (`Shape.decode` makes records of them): the lists keep messages by these
        (`api/shown_rows.py`). SQLAlchemy compiles the statement (cached) and runs it; the rows are
        read from the driver's cursor, not through SQLAlchemy's result, which would decode each one."""
        result = self.connection.execute(statement)
        try:
            return list(result.cursor.fetchall())
        finally:
            result.close()

    def prepared_records(self, model: type[Base], build: Callable[[], Select[Any]], **parameters: Any) -> list[Record]:
        """The records of the statement `build` makes (on `shape(model).select()`, its values
        named bind parameters), compiled once and run on the driver's own cursor: for the reads
        that run after every commit (the event feed's)."""
        statement = prepared(build, self.connection.dialect)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        decode = self.shape(model).decode
        rows = cursor.execute(statement.sql, statement.arguments(parameters)).fetchall()
        return [decode(stored) for stored in rows]

    def prepared_rows(self, statement: Prepared, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a statement compiled once (`compiled_once`), as the driver gives them, run on
        the driver's own cursor inside the connection's read transaction (begun here if it is not
        yet), so the reads of one call share one snapshot as those SQLAlchemy runs do."""
        if not self.connection.in_transaction():
            self.connection.begin()
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return list(cursor.execute(statement.sql, statement.arguments(parameters)).fetchall())

    def scalar(self, statement: Select[Any]) -> Any:
        return self.connection.scalar(statement)
