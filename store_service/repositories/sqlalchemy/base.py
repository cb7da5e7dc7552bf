"""What every SQLAlchemy adapter shares: CRUD, reference checks and constraint-error mapping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, exc, select
from sqlalchemy.orm import Session

from store_service.db import lookups
from store_service.db.models import Base
from store_service.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MissingReference,
    NotFound,
)
from store_service.repositories.sqlalchemy import inserts

RowT = TypeVar("RowT", bound=Base)

# How SQLite words a violated constraint; PostgreSQL gives its SQLSTATE and the key instead.
_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+)\.(\w+)")
_NOT_NULL = re.compile(r"NOT NULL constraint failed: \w+\.(\w+)")
_POSTGRES_KEY = re.compile(r"Key \((\w+)")
_POSTGRES_KINDS = {"23505": "unique", "23502": "not_null", "23503": "foreign_key"}


def resource_name(model: type[Base]) -> str:
    return model.event_entity or model.__tablename__


def model_for_table(table_name: str) -> type[Base]:
    for mapper in Base.registry.mappers:
        model: type[Base] = mapper.class_
        if getattr(model, "__tablename__", None) == table_name:
            return model
    raise LookupError(table_name)


def violation(error: exc.IntegrityError) -> tuple[str, str | None]:
    """What the database refused: ("unique" | "not_null" | "foreign_key" | "other", the column it
    names first, if any), from SQLite's message or PostgreSQL's diagnostics."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        diagnostics = original.diag  # type: ignore[union-attr]
        kind = _POSTGRES_KINDS.get(sqlstate, "other")
        if kind == "not_null":
            return kind, diagnostics.column_name
        key = _POSTGRES_KEY.match(diagnostics.message_detail or "") if kind == "unique" else None
        return kind, key.group(1) if key else None
    text = str(original)
    if unique := _UNIQUE.search(text):
        return "unique", unique.group(2)
    if not_null := _NOT_NULL.search(text):
        return "not_null", not_null.group(1)
    return ("foreign_key", None) if "FOREIGN KEY" in text else ("other", None)


@contextmanager
def constraint_errors(model: type[Base]) -> Iterator[None]:
    """Turns a constraint the database enforced into the domain error a client can act on."""
    try:
        yield
    except exc.IntegrityError as error:
        kind, column = violation(error)
        if kind == "unique" and column:
            raise AlreadyExists(resource_name(model), column) from error
        if kind == "not_null" and column:
            raise InvalidArgument.of(column, "is required") from error
        if kind == "foreign_key":
            raise FailedPrecondition("a referenced row does not exist", "MISSING_REFERENCE") from error
        raise FailedPrecondition(f"{resource_name(model)}: constraint violated") from error


class SqlAlchemyRepository(Generic[RowT]):
    model: ClassVar[type[Base]]

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def resource(self) -> str:
        return resource_name(self.model)

    def create(self, **values: Any) -> RowT:
        self.check_references(values)
        row: RowT = self.model(**values)  # type: ignore[assignment]
        with constraint_errors(self.model):
            inserts.add(self.session, row)
        return row

    def find_by_id(self, row_id: str) -> RowT | None:
        return self.session.get(self.model, row_id)  # type: ignore[return-value]

    def get(self, row_id: str) -> RowT:
        row = self.find_by_id(row_id)
        if row is None:
            raise NotFound(self.resource, row_id)
        return row

    def update(self, row_id: str, **values: Any) -> RowT:
        row = self.get(row_id)
        self.check_references(values)
        for key, value in values.items():
            setattr(row, key, value)
        self.flush()
        return row

    def delete(self, row_id: str) -> None:
        self.session.delete(self.get(row_id))
        self.flush()

    def find_all(self) -> list[RowT]:
        return self.find_where()

    def find_where(self, *criteria: ColumnElement[bool]) -> list[RowT]:
        order = (self.model.create_time, self.model.id)  # type: ignore[attr-defined]
        return list(self.session.scalars(select(self.model).where(*criteria).order_by(*order)))

    def flush(self) -> None:
        with constraint_errors(self.model):
            self.session.flush()

    def check_references(self, values: dict[str, Any]) -> None:
        """A foreign key to a missing row is the client's mistake: name the field that holds it."""
        mapper = self.model.__mapper__
        for key, value in values.items():
            if value is None or key not in mapper.columns:
                continue
            for foreign_key in mapper.columns[key].foreign_keys:
                target = model_for_table(foreign_key.column.table.name)
                if not lookups.exists(self.session, target, value):
                    raise MissingReference(key, resource_name(target), str(value))
