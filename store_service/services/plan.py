"""Writes a person makes to the plan that take more than one row: a task or a phase created with
the edges it waits for, and a merged phase reopened for a new task. Each runs inside the caller's
transaction, so a bad dependency or a refused reopen leaves nothing behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store_service.domain.errors import FailedPrecondition, MissingReference
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork

REOPENED_INITIATIVE = ("pending_review", "completed")


def add_dependencies(repository: Any, resource: str, row_id: str, depends_on: Sequence[str], field: str) -> None:
    """Edges from the new row to each of `depends_on` (tasks or phases, by `repository`); a missing
    one is MISSING_REFERENCE naming `field[i]`, a cycle DEPENDENCY_CYCLE, as for one edge."""
    for index, dependency in enumerate(depends_on):
        if not dependency or repository.find_by_id(dependency) is None:
            raise MissingReference(f"{field}[{index}]", resource, dependency)
        repository.create_dependency(row_id, dependency)


def reopen_phase(uow: SqlAlchemyUnitOfWork, phase_id: str | None) -> None:
    """A COMPLETED phase goes back to APPROVED (the orchestrator starts it again, and it is reviewed
    and merged again), its initiative back to ACTIVE if it was awaiting review or delivered. Any
    other phase is left as it is."""
    if not phase_id:
        return
    phase = uow.phases.find_by_id(phase_id)
    if phase is None or phase.status != "completed":
        return
    initiative = uow.initiatives.get(phase.initiative_id)
    if initiative.status == "archived":
        raise FailedPrecondition(
            f"phase {phase_id!r} belongs to an archived initiative: bring the initiative back first",
            "INITIATIVE_ARCHIVED",
            field="phase_id",
        )
    uow.phases.update(phase_id, status="approved", reason=None)
    if initiative.status in REOPENED_INITIATIVE:
        uow.initiatives.update(initiative.id, status="active")
