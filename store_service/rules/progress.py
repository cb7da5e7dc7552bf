"""Progress invariants, kept by the store in the write's own transaction, whichever RPC writes (an
Update, AppendEvent's changes, a change set or its revert):

- a phase enters PENDING_REVIEW only when it has tasks and every one of them is COMPLETED and
  merged into the phase branch (`merge_time` set); it enters COMPLETED (merged) only when every task
  it has is (a person may close a phase that never had any);
- an initiative enters PENDING_REVIEW or COMPLETED only when every phase it has is COMPLETED (its
  work may also be tasks outside phases);
- a task enters IN_PROGRESS, and a running agent is made for a task, only when each task it
  depends on is COMPLETED and each phase its phase depends on is COMPLETED;
- a task has at most one live agent (RUNNING or WAITING_FOR_INPUT) at any moment: an agent becomes
  live only when no other agent of its task is;
- an account has at most `max_concurrent_agents` live agents (when above 0): two orchestrators that
  both took an account's last slot (GetNextAvailableAccount, then the agent's write) cannot both
  start a run on it: the second write is refused.

Why here: the orchestrator decides from a cache that follows the event log, and a cache can lag
behind a burst of writes. A phase whose tasks had not reached the cache yet looked like "every one
of its (zero) tasks is done". Kept in the write, no reader can move work early however far behind
it is: its write answers FAILED_PRECONDITION naming what is missing, and it decides again.

The rules themselves are pure (store_service/domain/progress.py), shared with the in-memory fake
store the orchestrator's controllers are tested against; this module feeds them the rows.

The rows a transaction moves are noted as it flushes (`install`) and checked once, at commit
(`check`), against what the transaction leaves: so the order of the changes inside one
AppendEvent (a task's merge, then its phase's review) does not matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from store_service.db.models import Account, Agent, Base, Initiative, Phase, PhaseDependency, Task, TaskDependency
from store_service.domain import progress as rules
from store_service.domain.errors import FailedPrecondition
from store_service.domain.progress import COMPLETED, LIVE_AGENT, Guarded, Named, PhaseTask

# The ErrorInfo reason of every refusal here: "decide again from fresher state".
NOT_READY = rules.NOT_READY
_PENDING_KEY = "cw.progress.pending"
_NEW_KEY = "cw.progress.inserted"

_KIND: dict[type[Base], Guarded] = {
    Phase: Guarded.PHASE,
    Initiative: Guarded.INITIATIVE,
    Task: Guarded.TASK,
    Agent: Guarded.AGENT,
}


def _enters_guarded_status(session: Session, row: Any) -> bool:
    """A new row with a guarded status, or a stored one whose status this flush changes to one
    (an agent: from one that is not live; a resumed agent stays the task's one live agent)."""
    kind = _KIND.get(type(row))
    if kind is None or not rules.enters_guarded(kind, row.status):
        return False
    if row in session.new:
        return not isinstance(row, Agent) or bool(row.task_id)
    history = inspect(row).attrs.status.history
    if not history.has_changes():
        return False
    return not isinstance(row, Agent) or not any(before in LIVE_AGENT for before in history.deleted)


def guards_new(row: Base) -> bool:
    """A new row (its defaults given) whose status these invariants check when it is made."""
    kind = _KIND.get(type(row))
    status = getattr(row, "status", None)
    return kind is not None and status is not None and rules.enters_guarded(kind, status)


def _note_moves(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    moved = [row for row in (*session.new, *session.dirty) if _enters_guarded_status(session, row)]
    if moved:
        session.info.setdefault(_PENDING_KEY, []).extend(moved)
        session.info.setdefault(_NEW_KEY, set()).update(id(row) for row in moved if row in session.new)


def install(session_class: type[Session]) -> None:
    if not event.contains(session_class, "before_flush", _note_moves):
        event.listen(session_class, "before_flush", _note_moves)


def forget(session: Session) -> None:
    """Drops what a transaction that is not committed noted."""
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_NEW_KEY, None)


def check(session: Session) -> None:
    """Raises FailedPrecondition (reason NOT_READY) if a row this transaction moved breaks an
    invariant in the state the transaction leaves."""
    session.flush()
    moved: list[Any] = session.info.pop(_PENDING_KEY, [])
    inserted: set[int] = session.info.pop(_NEW_KEY, set())
    seen: set[tuple[type[Base], str]] = set()
    for row in moved:
        key = (type(row), row.id)
        if key in seen or row not in session:
            continue
        seen.add(key)
        if not rules.enters_guarded(_KIND[type(row)], row.status):
            continue  # moved on again within the same transaction
        problem = _CHECKS[type(row)](session, row, id(row) in inserted)
        if problem is not None:
            raise FailedPrecondition(problem, NOT_READY, resource=row.event_entity or "", id=row.id)


def _phase_problem(session: Session, phase: Phase, _new: bool) -> str | None:
    tasks = session.execute(select(Task.name, Task.status, Task.merge_time).where(Task.phase_id == phase.id)).all()
    facts = [PhaseTask(name, status, merged is not None) for name, status, merged in tasks]
    return rules.phase_problem(phase.id, phase.status, facts)


def _initiative_problem(session: Session, initiative: Initiative, _new: bool) -> str | None:
    phases = session.execute(select(Phase.name, Phase.status).where(Phase.initiative_id == initiative.id)).all()
    return rules.initiative_problem(initiative.id, initiative.status, [Named(name, status) for name, status in phases])


def _task_problem(session: Session, task: Task, _new: bool = False) -> str | None:
    tasks = session.execute(
        select(Task.name, Task.status)
        .join(TaskDependency, TaskDependency.depends_on_task_id == Task.id)
        .where(TaskDependency.task_id == task.id, Task.status != COMPLETED)
    ).all()
    phases: list[Any] = []
    if task.phase_id:
        phases = list(
            session.execute(
                select(Phase.name, Phase.status)
                .join(PhaseDependency, PhaseDependency.depends_on_phase_id == Phase.id)
                .where(PhaseDependency.phase_id == task.phase_id, Phase.status != COMPLETED)
            ).all()
        )
    return rules.task_problem(
        task.id, [Named(name, status) for name, status in tasks], [Named(name, status) for name, status in phases]
    )


def _agent_problem(session: Session, agent: Agent, new: bool) -> str | None:
    if not agent.task_id:
        return None
    other = session.execute(
        select(Agent.name, Agent.status).where(
            Agent.task_id == agent.task_id, Agent.id != agent.id, Agent.status.in_(LIVE_AGENT)
        )
    ).first()
    others = [Named(other.name, other.status)] if other is not None else []
    task = session.get(Task, agent.task_id)
    starts = task is not None and agent.status == "running" and new  # a missing task: the reference check
    problem = rules.agent_problem(agent.task_id, others, _task_problem(session, task) if starts and task else None)
    return problem or _account_problem(session, agent)


def _account_problem(session: Session, agent: Agent) -> str | None:
    account = session.get(Account, agent.account_id) if agent.account_id else None
    if account is None or not account.max_concurrent_agents:
        return None
    live = session.execute(
        select(Agent.name, Agent.status).where(Agent.account_id == account.id, Agent.status.in_(LIVE_AGENT))
    ).all()
    return rules.account_problem(account.id, account.max_concurrent_agents, [Named(n, s) for n, s in live])


_CHECKS: dict[type[Base], Callable[[Session, Any, bool], str | None]] = {
    Phase: _phase_problem,
    Initiative: _initiative_problem,
    Task: _task_problem,
    Agent: _agent_problem,
}
