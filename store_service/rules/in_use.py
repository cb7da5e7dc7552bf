"""A person's edit or delete of a task, a phase or a project waits until no live agent depends on it.

An agent works on its task's description and branch, in its phase, inside clones of its initiative's
projects: changing any of these under it (renaming the project its worktree lives in, deleting the
task its run will settle) would leave its work without a home. The orchestrator's own writes go
through: it is the one settling those agents.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from store_service.db.models import Agent, InitiativeProject, Task
from store_service.domain.errors import FailedPrecondition

LIVE = ("running", "waiting_for_input")


def _live_agents(field: str, row_id: str) -> Select[str] | None:
    """The names of the live agents that depend on the row, or None for a kind no agent needs."""
    query = select(Agent.name).where(Agent.status.in_(LIVE)).order_by(Agent.name)
    if field == "task":
        return query.where(Agent.task_id == row_id)
    if field == "phase":
        return query.where(Agent.task_id.in_(select(Task.id).where(Task.phase_id == row_id)))
    if field == "project":
        initiatives = select(InitiativeProject.initiative_id).where(InitiativeProject.project_id == row_id)
        return query.where(Agent.initiative_id.in_(initiatives))
    return None


def check(session: Session, field: str, row_id: str) -> None:
    """FAILED_PRECONDITION (AGENT_WORKING, naming the agents) while a live agent depends on the row."""
    query = _live_agents(field, row_id)
    names = list(session.scalars(query)) if query is not None else []
    if names:
        shown = ", ".join(names[:5])
        raise FailedPrecondition(
            f"{field} {row_id!r} cannot change while agent {shown} works on it: wait until it is done, "
            f"or stop it (cw agent stop {names[0]})",
            "AGENT_WORKING",
            field=field,
            agents=",".join(names),
        )
