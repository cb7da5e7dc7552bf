"""Write-time consistency of rows that point at each other, whichever RPC writes them (Create,
Update, AppendEvent changes, change sets and their reverts all go through the repositories):

- a tree (tasks under tasks, pages under pages) has no cycle and stays inside one initiative;
- a task's phase and initiative agree; given only a phase, a task takes the phase's initiative
  (so its events carry it, and streams filtered by initiative see them);
- a phase with tasks or dependency edges stays in its initiative;
- a planning task's target is a page, phase or task of its initiative;
- a COMPLETED (merged) phase takes no new task: it would never run (reopen the phase first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store_service.db import lookups
from store_service.db.models import Base, Page, Phase, PhaseDependency, Task
from store_service.domain.errors import FailedPrecondition, InvalidArgument, MissingReference


def _state(stored: Base | None, values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The row's values for `keys` as this write leaves them."""
    return {key: values[key] if key in values else getattr(stored, key, None) for key in keys}


def _mismatch(field: str, what: str, initiative_id: str | None, expected: str | None) -> FailedPrecondition:
    return FailedPrecondition(
        f"{field}: {what} belongs to initiative {initiative_id!r}, not {expected!r}", "INITIATIVE_MISMATCH", field=field
    )


@dataclass(frozen=True)
class Tree:
    """Rows of `model` under a parent row of the same table, all in one initiative."""

    model: type[Base]
    parent: str
    resource: str

    def check(self, session: Session, row_id: str | None, stored: Base | None, values: dict[str, Any]) -> None:
        state = _state(stored, values, (self.parent, "initiative_id"))
        field = f"{self.resource}.{self.parent}"
        parent_id, initiative_id = state[self.parent], state["initiative_id"]
        if parent_id is not None:
            if parent_id == row_id:
                raise InvalidArgument.of(field, f"a {self.resource} cannot be its own parent")
            if row_id is not None and row_id in self._ancestors(session, parent_id):
                raise FailedPrecondition(
                    f"{field}: {self.resource} {parent_id!r} lies under this {self.resource}",
                    "PARENT_CYCLE",
                    field=field,
                )
            parent = session.get(self.model, parent_id)
            parent_initiative = getattr(parent, "initiative_id", None)
            if parent_initiative is not None and initiative_id is not None and parent_initiative != initiative_id:
                raise _mismatch(field, f"parent {parent_id!r}", parent_initiative, initiative_id)
        if stored is not None and initiative_id != getattr(stored, "initiative_id", None):
            self._check_children_follow(session, row_id, initiative_id)

    def _ancestors(self, session: Session, start: str) -> set[str]:
        column = getattr(self.model, self.parent)
        seen: set[str] = set()
        current: str | None = start
        while current is not None and current not in seen:
            seen.add(current)
            current = session.scalar(select(column).where(self.model.id == current))  # type: ignore[attr-defined]
        return seen

    def _check_children_follow(self, session: Session, row_id: str | None, initiative_id: str | None) -> None:
        model: Any = self.model
        child = session.scalar(
            select(model.id).where(getattr(model, self.parent) == row_id, model.initiative_id != initiative_id)
        )
        if child is not None:
            field = f"{self.resource}.initiative_id"
            raise FailedPrecondition(
                f"{field}: {self.resource} {child!r} under this one stays in its initiative; move it first",
                "INITIATIVE_MISMATCH",
                field=field,
            )


TASK_TREE = Tree(Task, "parent_task_id", "task")
PAGE_TREE = Tree(Page, "parent_page_id", "page")


def check_task(session: Session, row_id: str | None, stored: Task | None, values: dict[str, Any]) -> dict[str, Any]:
    """The values to write, with the initiative of the task's phase filled in when the write sets a
    phase and no initiative."""
    values = dict(values)
    phase_id = values["phase_id"] if "phase_id" in values else getattr(stored, "phase_id", None)
    phase = lookups.stored(session, Phase, phase_id, ("initiative_id", "status")) if phase_id else None
    if phase is not None and values.get("phase_id") and "initiative_id" not in values:
        values["initiative_id"] = phase[0]
    state = _state(stored, values, ("phase_id", "initiative_id"))
    if phase is not None and phase[0] != state["initiative_id"]:
        raise _mismatch("task.initiative_id", f"phase {phase_id!r}", phase[0], state["initiative_id"])
    joins = phase is not None and (stored is None or stored.phase_id != phase_id)
    if joins and phase is not None and phase[1] == "completed":
        raise FailedPrecondition(
            f"task.phase_id: phase {phase_id!r} is COMPLETED (merged): a task added to it would never run; "
            "reopen it with the task (`--reopen`: the phase runs, is reviewed and merged again)",
            "PHASE_COMPLETED",
            field="task.phase_id",
        )
    TASK_TREE.check(session, row_id, stored, values)
    if values.get("target_id"):
        _check_target(session, values["target_id"], state["initiative_id"])
    return values


def _check_target(session: Session, target_id: str, initiative_id: str | None) -> None:
    """A planning task's target is a page, phase or task of its own initiative."""
    target = next((row for model in (Page, Phase, Task) if (row := session.get(model, target_id)) is not None), None)
    if target is None:
        raise MissingReference("target_id", "page, phase or task", target_id)
    target_initiative = getattr(target, "initiative_id", None)
    if target_initiative != initiative_id:
        raise _mismatch("task.target_id", f"target {target_id!r}", target_initiative, initiative_id)


def check_phase_move(session: Session, stored: Phase, values: dict[str, Any]) -> None:
    """A phase's tasks and dependency edges belong to its initiative: it cannot leave with them."""
    if values.get("initiative_id", stored.initiative_id) == stored.initiative_id:
        return
    edges = select(PhaseDependency.id).where(
        or_(PhaseDependency.phase_id == stored.id, PhaseDependency.depends_on_phase_id == stored.id)
    )
    if session.scalar(select(Task.id).where(Task.phase_id == stored.id)) or session.scalar(edges):
        raise FailedPrecondition(
            "phase.initiative_id: a phase with tasks or dependencies cannot move to another initiative",
            "INITIATIVE_MISMATCH",
            field="phase.initiative_id",
        )
