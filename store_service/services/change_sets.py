"""Change sets: edits to pages, phases, tasks and their dependency edges (a chat-driven
refinement's, or accepted proposals'), applied in one transaction with a before/after snapshot of
each entity, so they can be shown and reverted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, select
from sqlalchemy.orm import Session

from store_service.db.models import Base, ChangeSet, Page, Phase, PhaseDependency, Proposal, Task, TaskDependency
from store_service.domain.errors import FailedPrecondition, InvalidArgument
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository, model_for_table, resource_name
from store_service.repositories.sqlalchemy.phase import SqlAlchemyPhaseRepository
from store_service.repositories.sqlalchemy.task import SqlAlchemyTaskRepository
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork

ENTITY_MODELS: dict[str, type[Base]] = {
    "page": Page,
    "phase": Phase,
    "task": Task,
    "phase_dependency": PhaseDependency,
    "task_dependency": TaskDependency,
}
EDGES = frozenset({"phase_dependency", "task_dependency"})
# Dependent rows named in a refusal, at most.
MAX_LISTED = 10


@dataclass(frozen=True)
class Change:
    entity_type: str
    action: str
    entity_id: str | None
    values: dict[str, Any]


def snapshot(row: Base) -> dict[str, Any]:
    """The row's column values, JSON-safe."""
    values = {}
    for key in row.__mapper__.columns.keys():  # noqa: SIM118 (a ReadOnlyProperties, not a dict)
        value = getattr(row, key)
        values[key] = value.isoformat() if isinstance(value, datetime) else value
    return values


def restore(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    columns = model.__mapper__.columns
    return {
        key: datetime.fromisoformat(value) if value and isinstance(columns[key].type, DateTime) else value
        for key, value in values.items()
        if key in columns
    }


class _PhaseEdges(SqlAlchemyRepository[PhaseDependency]):
    """Dependency edges as change sets write them: created (with the checks CreatePhaseDependency
    makes, cycles included) and deleted, never updated."""

    model = PhaseDependency

    def create(self, **values: Any) -> PhaseDependency:
        SqlAlchemyPhaseRepository(self.session).check_dependency(values["phase_id"], values["depends_on_phase_id"])
        return super().create(**values)


class _TaskEdges(SqlAlchemyRepository[TaskDependency]):
    model = TaskDependency

    def create(self, **values: Any) -> TaskDependency:
        SqlAlchemyTaskRepository(self.session).check_dependency(values["task_id"], values["depends_on_task_id"])
        return super().create(**values)


def _repository(uow: SqlAlchemyUnitOfWork, entity_type: str) -> Any:
    if entity_type == "phase_dependency":
        return _PhaseEdges(uow.session)
    if entity_type == "task_dependency":
        return _TaskEdges(uow.session)
    return {"page": uow.pages, "phase": uow.phases, "task": uow.tasks}[entity_type]


def _rows_pointing_at(session: Session, entity_type: str, entity_id: str) -> list[tuple[str, str]]:
    """(id, description) of every row whose foreign key names the entity: a delete would cascade
    to it or empty its reference, and no revert could bring that back."""
    target = ENTITY_MODELS[entity_type].__table__
    found = []
    for table in Base.metadata.sorted_tables:
        for foreign_key in table.foreign_keys:
            if foreign_key.column.table is target:
                query = select(table.c.id).where(foreign_key.parent == entity_id).limit(MAX_LISTED)
                resource = resource_name(model_for_table(table.name))
                found += [
                    (row_id, f"{resource} {row_id!r} ({foreign_key.parent.name} -> {entity_type} {entity_id!r})")
                    for row_id in session.scalars(query)
                ]
    return found


def _refused(reason: str, what: str, rows: list[str]) -> FailedPrecondition:
    listed = rows[:MAX_LISTED]
    return FailedPrecondition(f"{what}: {', '.join(listed)}", reason, dependents=",".join(listed))


def _refuse_cascading_delete(uow: SqlAlchemyUnitOfWork, entity_type: str, entity_id: str) -> None:
    """A change set deletes no row others point at: reverting it could not bring them back."""
    rows = [described for _, described in _rows_pointing_at(uow.session, entity_type, entity_id)]
    if rows:
        raise _refused(
            "HAS_CHILDREN", f"a change set cannot delete {entity_type} {entity_id!r}; rows point at it", rows
        )


def _apply(uow: SqlAlchemyUnitOfWork, change: Change) -> dict[str, Any]:
    repository = _repository(uow, change.entity_type)
    if change.action == "create":
        row = repository.create(**change.values)
        return {"entity_id": row.id, "before": None, "after": snapshot(row)}
    if not change.entity_id:
        raise InvalidArgument.of("changes.entity_id", f"is required to {change.action}")
    before = snapshot(repository.get(change.entity_id))
    if change.action == "update" and change.entity_type in EDGES:
        raise InvalidArgument.of("changes.action", "a dependency edge is created or deleted, never updated")
    if change.action == "update":
        after: dict[str, Any] | None = snapshot(repository.update(change.entity_id, **change.values))
    else:
        _refuse_cascading_delete(uow, change.entity_type, change.entity_id)
        repository.delete(change.entity_id)
        after = None
    return {"entity_id": change.entity_id, "before": before, "after": after}


def apply_change(uow: SqlAlchemyUnitOfWork, change: Change) -> dict[str, Any]:
    """Applies one change; its entry of the change set (the entity's id, before and after)."""
    return {"entity_type": change.entity_type, "action": change.action, **_apply(uow, change)}


def apply_change_set(
    uow: SqlAlchemyUnitOfWork, chat_session_id: str, summary: str | None, changes: list[Change]
) -> ChangeSet:
    if not changes:
        raise InvalidArgument.of("changes", "must hold at least one change")
    session = uow.chat_sessions.get(chat_session_id)
    entries = [apply_change(uow, change) for change in changes]
    return uow.chat_sessions.create_change_set(
        chat_session_id=chat_session_id, initiative_id=session.initiative_id, summary=summary, entries=entries
    )


def _unchanged_since(current: dict[str, Any] | None, recorded: dict[str, Any] | None) -> bool:
    def comparable(values: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if values is None else {k: v for k, v in values.items() if k != "update_time"}

    return comparable(current) == comparable(recorded)


def _outside_dependents(session: Session, entries: list[dict[str, Any]]) -> list[str]:
    """Rows the change set did not create that point at a row it created (by any foreign key:
    cascading ones would vanish with it, the others would lose their reference)."""
    created = {entry["entity_id"] for entry in entries if entry["action"] == "create"}
    return [
        described
        for entry in entries
        if entry["action"] == "create"
        for row_id, described in _rows_pointing_at(session, entry["entity_type"], entry["entity_id"])
        if row_id not in created
    ]


def revert_change_set(uow: SqlAlchemyUnitOfWork, change_set_id: str) -> ChangeSet:
    change_set = uow.chat_sessions.get_change_set(change_set_id)
    if change_set.status != "applied":
        raise FailedPrecondition(f"change set {change_set_id!r} is already reverted", "ALREADY_REVERTED")
    dependents = _outside_dependents(uow.session, change_set.entries)
    if dependents:
        what = "rows made outside the change set point at rows it created (remove or move them, then revert)"
        raise _refused("HAS_DEPENDENTS", what, dependents)
    for entry in reversed(change_set.entries):
        entity_type, entity_id = entry["entity_type"], entry["entity_id"]
        repository = _repository(uow, entity_type)
        row = repository.find_by_id(entity_id)
        if not _unchanged_since(snapshot(row) if row else None, entry["after"]):
            raise FailedPrecondition(
                f"{entity_type} {entity_id!r} changed after the change set; revert refused", "CHANGED_SINCE"
            )
        model = ENTITY_MODELS[entity_type]
        if entry["action"] == "create":
            repository.delete(entity_id)
        elif entry["action"] == "update":
            repository.update(entity_id, **restore(model, entry["before"]))
        else:
            repository.create(**restore(model, entry["before"]))
    change_set.status = "reverted"
    _settle_proposals(uow.session, change_set)
    uow.session.flush()
    return change_set


def _settle_proposals(session: Session, change_set: ChangeSet) -> None:
    """What the change set's proposals become once what they made is gone. Accepted by a person
    (`cw proposals revert`): pending again, to choose anew. Applied by a chat (`cw chat undo`): the
    person undid the agent's reply, so they are dismissed, keeping the reverted change set as their
    trace; pending, they came back to the inbox as if never seen."""
    proposals = session.scalars(select(Proposal).where(Proposal.change_set_id == change_set.id))
    for proposal in proposals:
        proposal.entity_id = None
        if change_set.chat_session_id:
            proposal.status = "dismissed"
        else:
            proposal.status, proposal.change_set_id = "pending", None
