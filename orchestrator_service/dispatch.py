"""Pure decisions: what may start, what runs next, what a finished agent means, retry arithmetic.

No I/O here: the reconciler feeds in stored state (proto messages) and acts on the answers, so
every rule can be tested fast and exhaustively.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cw.store.v1 import phase_pb2, task_pb2

MAX_TASK_RETRIES = 3

_PRIORITY_RANK = {
    task_pb2.TASK_PRIORITY_HIGH: 0,
    task_pb2.TASK_PRIORITY_MEDIUM: 1,
    task_pb2.TASK_PRIORITY_UNSPECIFIED: 1,
    task_pb2.TASK_PRIORITY_LOW: 2,
}


@dataclass
class Backoff:
    """Exponential delays between attempts: `initial`, doubling, at most `ceiling` (by default
    0.1 s to 5 s, for reaching the store)."""

    initial: float = 0.1
    ceiling: float = 5.0
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next_delay(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self.current = self.initial


@dataclass(frozen=True)
class CrashDecision:
    status: task_pb2.TaskStatus.ValueType
    retry_count: int
    event: str


def after_crash(retry_count: int) -> CrashDecision:
    """Rule 5: retried while retry_count < MAX_TASK_RETRIES (counting the retry), then BLOCKED."""
    if retry_count < MAX_TASK_RETRIES:
        return CrashDecision(task_pb2.TASK_STATUS_PENDING, retry_count + 1, "task:retried")
    return CrashDecision(task_pb2.TASK_STATUS_BLOCKED, retry_count, "task:blocked")


def dispatch_key(task: task_pb2.Task) -> tuple[int, int, int, int, str]:
    """High before medium before low, then `order`, then the oldest first."""
    return (
        _PRIORITY_RANK.get(task.priority, 1),
        task.order,
        task.create_time.seconds,
        task.create_time.nanos,
        task.id,
    )


def dependencies_by_task(edges: Iterable[task_pb2.TaskDependency]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        found[edge.task_id].add(edge.depends_on_task_id)
    return found


def ready_tasks(
    tasks: Iterable[task_pb2.Task],
    depends_on: Mapping[str, set[str]],
    running_phases: set[str],
    queued_without_phase: set[str],
    completed: set[str],
) -> list[task_pb2.Task]:
    """PENDING tasks whose dependencies are all COMPLETED, in a running phase (or, without a phase,
    queued by DispatchTask), in dispatch order."""
    ready = [
        task
        for task in tasks
        if task.status == task_pb2.TASK_STATUS_PENDING
        and depends_on.get(task.id, set()) <= completed
        and (task.phase_id in running_phases if task.phase_id else task.id in queued_without_phase)
    ]
    return sorted(ready, key=dispatch_key)


def finished_dependencies(tasks: Mapping[str, task_pb2.Task], depends_on: Mapping[str, set[str]]) -> set[str]:
    """Dependencies whose work is where their dependents start from: COMPLETED and merged, or no
    longer among the live tasks at all (finished history is not kept live)."""
    needed: set[str] = set().union(*depends_on.values()) if depends_on else set()
    return {
        task_id
        for task_id in needed
        if task_id not in tasks
        or (tasks[task_id].status == task_pb2.TASK_STATUS_COMPLETED and tasks[task_id].HasField("merge_time"))
    }


def retry_not_due(tasks: Iterable[task_pb2.Task], now: datetime) -> tuple[set[str], datetime | None]:
    """PENDING tasks whose retry pause has not passed yet, and when the first of them is due."""
    waiting: set[str] = set()
    earliest: datetime | None = None
    for task in tasks:
        if task.status != task_pb2.TASK_STATUS_PENDING or not task.HasField("next_attempt_time"):
            continue
        due = task.next_attempt_time.ToDatetime(tzinfo=UTC)
        if due > now:
            waiting.add(task.id)
            earliest = due if earliest is None else min(earliest, due)
    return waiting, earliest


def phases_to_start(phases: Iterable[phase_pb2.Phase], depends_on: Mapping[str, set[str]]) -> list[phase_pb2.Phase]:
    """APPROVED phases whose dependencies are all COMPLETED (merged into the initiative branch)."""
    phase_list = list(phases)
    completed = {phase.id for phase in phase_list if phase.status == phase_pb2.PHASE_STATUS_COMPLETED}
    return [
        phase
        for phase in phase_list
        if phase.status == phase_pb2.PHASE_STATUS_APPROVED and depends_on.get(phase.id, set()) <= completed
    ]


def running_phase_status(tasks: Iterable[task_pb2.Task], merged: set[str]) -> phase_pb2.PhaseStatus.ValueType:
    """Where an IN_PROGRESS or BLOCKED phase belongs now: BLOCKED while any task is, PENDING_REVIEW
    once it has tasks and every one is COMPLETED and merged, else IN_PROGRESS (no tasks is not
    "all done": the store refuses that move too)."""
    task_list = list(tasks)
    if any(task.status == task_pb2.TASK_STATUS_BLOCKED for task in task_list):
        return phase_pb2.PHASE_STATUS_BLOCKED
    if task_list and all(task.status == task_pb2.TASK_STATUS_COMPLETED and task.id in merged for task in task_list):
        return phase_pb2.PHASE_STATUS_PENDING_REVIEW
    return phase_pb2.PHASE_STATUS_IN_PROGRESS


class OutcomeKind(StrEnum):
    """How a run ended: its signal file's `status`, or what cw saw of its process. A str, so it
    reads as its value in a log line, an event's details or a JSON report."""

    DONE = "done"
    QUESTIONS = "questions"
    ERROR = "error"
    RATE_LIMITED = "rate_limited"
    CREDENTIALS_REFUSED = "credentials_refused"
    CRASH = "crash"
    # The conversation reports (orchestrator_service/conversations/).
    ASK = "ask"
    ANSWER = "answer"


@dataclass(frozen=True)
class AgentOutcome:
    kind: OutcomeKind
    summary: str = ""
    questions: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    retry_after_seconds: float = 0.0
    # The reset the CLI named, when it named one: the rest ends exactly then (the seconds above,
    # counted from an earlier clock reading than the settlement's, could end it a second late).
    rest_until: datetime | None = None
    exit_code: int | None = None
    # The session the CLI reported (Claude Code keeps its id on resume; should a version name a new
    # one, that one is resumed next): store it on the agent. Empty when the provider reported none.
    session_id: str = ""
    # A resume failed because the CLI does not know the session: start a new session instead.
    unknown_session: bool = False
    # The signal file's whole JSON object, for what rides next to `status` (review comments,
    # resolved comments, messages, a question and its answer); empty without a signal file.
    report: dict[str, Any] = field(default_factory=dict)


def classify_exit(exit_code: int | None, signal_text: str | None) -> AgentOutcome:
    """What a finished agent process means (README, "The agent protocol"). `exit_code` None means
    the process died by a signal or vanished without recording an exit."""
    if exit_code is None or exit_code != 0:
        reason = "killed or vanished" if exit_code is None else f"exited with {exit_code}"
        return AgentOutcome(OutcomeKind.CRASH, error=reason, exit_code=exit_code)
    if signal_text is None or not signal_text.strip():
        return AgentOutcome(OutcomeKind.DONE, exit_code=0)
    try:
        signal = json.loads(signal_text)
    except ValueError as error:
        return AgentOutcome(OutcomeKind.ERROR, error=f"unreadable signal file: not JSON ({error})", exit_code=0)
    if not isinstance(signal, dict) or "status" not in signal:
        return AgentOutcome(OutcomeKind.ERROR, error='unreadable signal file: no object with a "status"', exit_code=0)
    status = signal["status"]
    if status == "done":
        return AgentOutcome(OutcomeKind.DONE, summary=str(signal.get("summary") or ""), exit_code=0, report=signal)
    if status in ("ask", "answer"):
        return AgentOutcome(OutcomeKind(status), exit_code=0, report=signal)
    if status == "questions":
        questions = [q for q in signal.get("questions") or [] if isinstance(q, dict)]
        if questions:
            return AgentOutcome(OutcomeKind.QUESTIONS, questions=questions, exit_code=0, report=signal)
        return AgentOutcome(OutcomeKind.ERROR, error="questions without any question", exit_code=0)
    if status == "rate_limited":
        try:
            retry_after = max(float(signal.get("retry_after_seconds") or 0), 0.0)
        except (TypeError, ValueError):
            retry_after = 0.0
        return AgentOutcome(OutcomeKind.RATE_LIMITED, retry_after_seconds=retry_after, exit_code=0)
    return AgentOutcome(
        OutcomeKind.ERROR, error=str(signal.get("error") or f"status {status!r}"), exit_code=0, report=signal
    )


@dataclass(frozen=True)
class Neighbour:
    """A task an execute run may ask (`{"status": "ask", "to": ...}`): one it depends on, or
    another task of its phase, with its agent's name once it has one."""

    task: task_pb2.Task
    agent_name: str = ""

    def line(self) -> str:
        status = task_pb2.TaskStatus.Name(self.task.status).removeprefix("TASK_STATUS_").lower()
        agent = f", agent {self.agent_name}" if self.agent_name else ", no agent yet"
        summary = f": {self.task.summary}" if self.task.summary else ""
        return f"- {self.task.name} (task {self.task.id}{agent}, {status}){summary}"


def build_prompt(
    task: task_pb2.Task,
    dependencies: Iterable[task_pb2.Task],
    siblings: Iterable[Neighbour] = (),
    agent_names: Mapping[str, str] | None = None,
) -> str:
    """The task description, the tasks it depends on (what they reported) and the other tasks of
    its phase, each with its id and agent's name: whom the run may ask, and how."""
    names = agent_names or {}
    parts = [f"# Task: {task.name}", "", task.description or "(no description)"]
    depended = [Neighbour(dependency, names.get(dependency.id, "")) for dependency in dependencies]
    others = list(siblings)
    if depended:
        parts += ["", "## The tasks this one depends on (what they reported)"]
        parts += [neighbour.line() for neighbour in depended]
    if others:
        parts += ["", "## The other tasks of this phase"]
        parts += [neighbour.line() for neighbour in others]
    parts += [
        "",
        "## When you finish",
        'Write a JSON object to the file named by $CW_SIGNAL_FILE: {"status": "done", "summary": "..."}; '
        'or {"status": "questions", "questions": [{"id": "q1", "question": "..."}]} if you need answers; '
        'or {"status": "error", "error": "..."}. Commit your work in each project directory first.',
    ]
    if depended or others:
        parts.append(
            'To ask the agent of a task listed above, write {"status": "ask", "to": "TASK_ID or AGENT_NAME", '
            '"question": "..."}: you are resumed with its answer.'
        )
    return "\n".join(parts) + "\n"


def answers_prompt(answers: Mapping[str, str]) -> str:
    """What a resumed agent reads after its task: the answers, also in $CW_ANSWERS_FILE as
    `{"QUESTION_ID": "answer"}`."""
    lines = ["", "## Answers to your questions"]
    lines += [f"- {question_id}: {answer}" for question_id, answer in answers.items()]
    return "\n".join(lines) + "\n"


MODE_BY_CATEGORY = {
    task_pb2.TASK_CATEGORY_DISCUSS: "discuss",
    task_pb2.TASK_CATEGORY_PLAN: "plan",
    task_pb2.TASK_CATEGORY_DETAIL: "detail",
    task_pb2.TASK_CATEGORY_REFINE: "refine",
}


def agent_mode(task: task_pb2.Task) -> str:
    return MODE_BY_CATEGORY.get(task.category, "execute")


class RunKind(StrEnum):
    """What a run is for, in its environment as CW_RUN_KIND (CW_MODE keeps its four values:
    merge, review and revision runs are all `execute` there)."""

    EXECUTE = "execute"
    MERGE = "merge"
    REVIEW = "review"
    REVISION = "revision"
    DISCUSS = "discuss"
    PLAN = "plan"
    DETAIL = "detail"
    REFINE = "refine"
    # A run resumed to answer another agent's question (conversations/controller.py).
    ANSWER = "answer"


def run_kind(task: task_pb2.Task) -> RunKind:
    if task.category == task_pb2.TASK_CATEGORY_MERGE or task.merge_source_task_id or task.merge_source_phase_id:
        return RunKind.MERGE
    if task.category == task_pb2.TASK_CATEGORY_REVIEW:
        return RunKind.REVIEW
    if task.review_comment_ids:
        return RunKind.REVISION
    return RunKind(agent_mode(task))


# Categories whose agents answer with words, not commits: a review agent's answer is its comments.
NO_MERGE_CATEGORIES = frozenset({task_pb2.TASK_CATEGORY_REVIEW})


def merges_work(task: task_pb2.Task) -> bool:
    """Whether the task's branch is merged once it is done: execute runs, but not reviews."""
    return agent_mode(task) == "execute" and task.category not in NO_MERGE_CATEGORIES
