"""Dependency edges between rows of one table (phases, tasks): validation and cycle checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from store_service.domain.errors import FailedPrecondition, InvalidArgument


def depends_transitively(
    session: Session,
    dependent: InstrumentedAttribute[Any],
    dependency: InstrumentedAttribute[Any],
    start: str,
    target: str,
) -> bool:
    """Whether `start` already depends, directly or not, on `target`."""
    seen, frontier = {start}, [start]
    while frontier:
        found = set(session.scalars(select(dependency).where(dependent.in_(frontier)))) - seen
        if target in found:
            return True
        seen |= found
        frontier = list(found)
    return False


def check_new_edge(
    session: Session,
    dependent: InstrumentedAttribute[Any],
    dependency: InstrumentedAttribute[Any],
    from_id: str,
    to_id: str,
) -> None:
    if from_id == to_id:
        raise InvalidArgument.of(dependency.key, "a row cannot depend on itself")
    if depends_transitively(session, dependent, dependency, to_id, from_id):
        raise FailedPrecondition(f"{from_id!r} -> {to_id!r} would close a dependency cycle", "DEPENDENCY_CYCLE")
