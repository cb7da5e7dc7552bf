"""The progress invariants as pure rules over plain values, so every store that keeps them (the
SQL store, store_service/rules/progress.py, and the in-memory fake the
orchestrator's controllers are tested against, tests/fakes/store.py) keeps the same ones:

- a phase enters PENDING_REVIEW only when it has tasks and every one of them is COMPLETED and
  merged into the phase branch; it enters COMPLETED only when every task it has is (a person may
  close a phase that never had any);
- an initiative enters PENDING_REVIEW or COMPLETED only when every phase it has is COMPLETED;
- a task enters IN_PROGRESS, and a running agent is made for a task, only when each task it
  depends on is COMPLETED and each phase its phase depends on is COMPLETED;
- a task has at most one live agent (RUNNING or WAITING_FOR_INPUT) at any moment: an agent becomes
  live only when no other agent of its task is;
- an account with a cap (`max_concurrent_agents` above 0) has at most that many live agents: an
  agent using it becomes live only while fewer are.

Statuses are the database's names (`"pending_review"`); each rule returns the problem in words
(what a refusal with reason NOT_READY says), or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# The ErrorInfo reason of every refusal: "decide again from fresher state".
NOT_READY = "NOT_READY"
COMPLETED = "completed"
LIVE_AGENT = frozenset({"running", "waiting_for_input"})
# How many names a refusal lists before "and N more".
_NAMES_SHOWN = 5


class Guarded(StrEnum):
    """The kinds of rows whose move into some statuses an invariant guards."""

    PHASE = "phase"
    INITIATIVE = "initiative"
    TASK = "task"
    AGENT = "agent"


GUARDED_STATUSES: dict[Guarded, frozenset[str]] = {
    Guarded.PHASE: frozenset({"pending_review", COMPLETED}),
    Guarded.INITIATIVE: frozenset({"pending_review", COMPLETED}),
    Guarded.TASK: frozenset({"in_progress"}),
    Guarded.AGENT: LIVE_AGENT,
}


@dataclass(frozen=True)
class Named:
    """A row a rule looks at: its name (for the message) and status."""

    name: str
    status: str


@dataclass(frozen=True)
class PhaseTask(Named):
    merged: bool


def enters_guarded(kind: Guarded, status: str) -> bool:
    return status in GUARDED_STATUSES[kind]


def names(rows: Iterable[tuple[str, str]]) -> str:
    """Sorted, so a refusal says the same whatever order a database returned its rows in."""
    listed = [f"{name!r} ({status.upper()})" for name, status in sorted(rows)]
    shown = ", ".join(listed[:_NAMES_SHOWN])
    more = len(listed) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def phase_problem(phase_id: str, status: str, tasks: Sequence[PhaseTask]) -> str | None:
    """A phase entering `status` (PENDING_REVIEW or COMPLETED) with these tasks."""
    target = status.upper()
    if not tasks and status == "pending_review":
        return f"phase {phase_id!r} has no tasks: it cannot become {target}"
    unfinished = [
        (task.name, "completed, not merged" if task.status == COMPLETED else task.status)
        for task in tasks
        if task.status != COMPLETED or not task.merged
    ]
    if unfinished:
        return (
            f"phase {phase_id!r} cannot become {target}: {len(unfinished)} of its {len(tasks)} tasks are not "
            f"COMPLETED and merged: {names(unfinished)}"
        )
    return None


def initiative_problem(initiative_id: str, status: str, phases: Sequence[Named]) -> str | None:
    """An initiative entering `status` (PENDING_REVIEW or COMPLETED) with these phases."""
    unfinished = [(phase.name, phase.status) for phase in phases if phase.status != COMPLETED]
    if unfinished:
        return (
            f"initiative {initiative_id!r} cannot become {status.upper()}: {len(unfinished)} of its "
            f"{len(phases)} phases are not COMPLETED: {names(unfinished)}"
        )
    return None


def task_problem(task_id: str, task_dependencies: Iterable[Named], phase_dependencies: Iterable[Named]) -> str | None:
    """A task starting while these tasks (its own dependencies) and these phases (those its phase
    depends on) are as given."""
    missing = [f"task {names([(t.name, t.status)])}" for t in task_dependencies if t.status != COMPLETED]
    missing += [f"phase {names([(p.name, p.status)])}" for p in phase_dependencies if p.status != COMPLETED]
    missing.sort(key=lambda text: (not text.startswith("task "), text))
    if not missing:
        return None
    more = len(missing) - _NAMES_SHOWN
    return f"task {task_id!r} cannot start: it waits for {', '.join(missing[:_NAMES_SHOWN])}" + (
        f" and {more} more" if more > 0 else ""
    )


def agent_problem(task_id: str, other_live: Sequence[Named], task_problem_text: str | None) -> str | None:
    """An agent becoming live for a task: refused while another agent of the task is live (listed
    in `other_live`), or, for a new running one, exactly when its task could not start
    (`task_problem_text`, given by the caller only then)."""
    if other_live:
        first = other_live[0]
        return f"task {task_id!r} already has a live agent: {names([(first.name, first.status)])}"
    return None if task_problem_text is None else f"no agent can run for it: {task_problem_text}"


def account_problem(account_id: str, cap: int, live: Sequence[Named]) -> str | None:
    """An agent using the account becoming live, `live` being every live agent of the account the
    write leaves, itself included: refused past the account's cap (0: none)."""
    if cap <= 0 or len(live) <= cap:
        return None
    listed = names((agent.name, agent.status) for agent in live)
    return f"account {account_id!r} runs at most {cap} agent(s) at once; live now: {listed}"
