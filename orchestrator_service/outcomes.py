"""Pure policy: what a finished run means for its agent, its task and its account.

`settle` turns (agent, task, outcome, now) into the field values to write and the events that
announce them; the agents controller writes them in one transaction, with preconditions. Nothing
here does I/O, so every rule is tested fast (tests/unit/test_outcomes.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service.agents.claude_outcome import clip
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind, after_crash

# Pauses before the 1st, 2nd and 3rd retry of a failed attempt (README, "Retries").
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
REASON_LIMIT = 4000


@dataclass(frozen=True)
class Note:
    """An event to record: its type, whether it is about the agent or the task, its details."""

    type: str
    about: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settlement:
    agent: dict[str, Any]
    task: dict[str, Any] | None
    notes: list[Note]
    # The account rests until then (a rate limit), else None.
    account_rests_until: datetime | None = None
    # The provider refused the account's credential: why (the account is marked unusable), else None.
    account_unusable_reason: str | None = None
    # More store requests for the same transaction: what the run reported (review comments,
    # messages...), added by the run's kind (orchestrator_service/runs/).
    creates: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RetryDecision:
    status: task_pb2.TaskStatus.ValueType
    retry_count: int
    event: str
    next_attempt_time: datetime | None


def retry_delay(retry_count: int, delays: Sequence[float]) -> float:
    """The pause before retry number `retry_count` (1-based); the last delay repeats."""
    if not delays:
        return 0.0
    return delays[min(max(retry_count, 1), len(delays)) - 1]


def after_failure(retry_count: int, now: datetime, delays: Sequence[float] = DEFAULT_RETRY_DELAYS) -> RetryDecision:
    """Rule 5 (`dispatch.after_crash`), with a pause before the retry that grows each time."""
    decision = after_crash(retry_count)
    if decision.status != task_pb2.TASK_STATUS_PENDING:
        return RetryDecision(decision.status, decision.retry_count, decision.event, None)
    pause = timedelta(seconds=retry_delay(decision.retry_count, delays))
    return RetryDecision(decision.status, decision.retry_count, decision.event, now + pause)


def failure_reason(error: str, output_tail: str) -> str:
    """What a person needs to see of a failed attempt: the error, then the output's last lines."""
    reason = error or "failed"
    if output_tail.strip():
        reason += "\n--- last output ---\n" + output_tail.rstrip()
    return reason[-REASON_LIMIT:]


# What an agent reports is stored on rows whose texts the store caps at 64 KiB (docs/api.md,
# limits): an agent's words are cut to fit, never a reason for a write to fail.
SUMMARY_BYTES = 16 * 1024
QUESTION_BYTES = 4 * 1024
MAX_QUESTIONS = 10


def within_limits(outcome: AgentOutcome) -> AgentOutcome:
    """The outcome with its summary, error and questions cut to what the store keeps."""
    questions = [
        {str(key): clip(str(value), QUESTION_BYTES) for key, value in question.items()}
        for question in outcome.questions[:MAX_QUESTIONS]
    ]
    return replace(
        outcome,
        summary=clip(outcome.summary, SUMMARY_BYTES),
        error=clip(outcome.error, SUMMARY_BYTES),
        questions=questions,
    )


def _result(outcome: AgentOutcome) -> str:
    return json.dumps({"status": outcome.kind, "summary": outcome.summary, "error": outcome.error}, ensure_ascii=False)


_OUTCOMES = {
    OutcomeKind.DONE: agent_pb2.AGENT_OUTCOME_DONE,
    OutcomeKind.ERROR: agent_pb2.AGENT_OUTCOME_FAILED,
    OutcomeKind.CRASH: agent_pb2.AGENT_OUTCOME_CRASHED,
    OutcomeKind.RATE_LIMITED: agent_pb2.AGENT_OUTCOME_RATE_LIMITED,
    OutcomeKind.CREDENTIALS_REFUSED: agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED,
}


def settle(
    agent: agent_pb2.Agent,
    task: task_pb2.Task | None,
    outcome: AgentOutcome,
    now: datetime,
    *,
    output_tail: str = "",
    delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
) -> Settlement:
    """The writes that settle one finished run. The task changes only while it is IN_PROGRESS (a
    person may have stopped it meanwhile)."""
    outcome = within_limits(outcome)
    if outcome.kind in (OutcomeKind.ASK, OutcomeKind.ANSWER):
        # Only a run that answers a conversation may answer; an ask is settled by the conversations
        # controller before this is reached, so here it is a report out of place.
        outcome = replace(outcome, kind=OutcomeKind.ERROR, error=f"an {outcome.kind.value!r} report nobody asked for")
    if outcome.kind == OutcomeKind.CREDENTIALS_REFUSED and not agent.account_id:
        # The environment's own key was refused: no account to set aside, a person must fix it.
        outcome = replace(outcome, kind=OutcomeKind.ERROR)
    in_progress = task is not None and task.status == task_pb2.TASK_STATUS_IN_PROGRESS
    agent_values: dict[str, Any] = {"result": _result(outcome), "exit_code": outcome.exit_code}
    if outcome.session_id and outcome.session_id != agent.session_id:
        agent_values["session_id"] = outcome.session_id  # the CLI's own: the next resume uses it
    if outcome.kind == OutcomeKind.QUESTIONS:
        agent_values |= {
            "status": agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT,
            "pending_questions": json.dumps(outcome.questions, ensure_ascii=False),
        }
        return Settlement(
            agent_values, None, [Note("agent:waiting_for_input", "agent", {"questions": len(outcome.questions)})]
        )
    agent_values["outcome"] = _OUTCOMES[outcome.kind]
    if outcome.kind == OutcomeKind.DONE:
        agent_values["status"] = agent_pb2.AGENT_STATUS_STOPPED
        notes = [Note("agent:stopped", "agent", {"outcome": "AGENT_OUTCOME_DONE"})]
        task_values = None
        if in_progress:
            task_values = {"status": task_pb2.TASK_STATUS_COMPLETED, "summary": outcome.summary, "reason": None}
            notes.append(Note("task:completed", "task", {"summary": outcome.summary}))
        return Settlement(agent_values, task_values, notes)
    if outcome.kind == OutcomeKind.RATE_LIMITED:
        agent_values["status"] = agent_pb2.AGENT_STATUS_STOPPED
        until = outcome.rest_until or now + timedelta(seconds=outcome.retry_after_seconds)
        notes = [Note("agent:stopped", "agent", {"outcome": "AGENT_OUTCOME_RATE_LIMITED"})]
        task_values = None
        if in_progress:
            task_values = {"status": task_pb2.TASK_STATUS_PENDING, "reason": "its account hit a rate limit"}
            notes.append(Note("task:queued", "task", {"reason": "rate_limited"}))
        return Settlement(agent_values, task_values, notes, until if agent.account_id else None)
    if outcome.kind == OutcomeKind.CREDENTIALS_REFUSED:
        return _credentials_refused(agent_values, in_progress, outcome)
    return _failed(agent_values, task if in_progress else None, outcome, now, output_tail=output_tail, delays=delays)


def _credentials_refused(agent_values: dict[str, Any], in_progress: bool, outcome: AgentOutcome) -> Settlement:
    """The account is set aside with the API's words; the task waits for another account, no
    attempt spent: the work was never tried."""
    reason = outcome.error or "the provider refused the account's credential"
    agent_values |= {"status": agent_pb2.AGENT_STATUS_STOPPED, "error": reason[:REASON_LIMIT]}
    notes = [Note("agent:stopped", "agent", {"outcome": "AGENT_OUTCOME_CREDENTIALS_REFUSED", "error": reason})]
    task_values = None
    if in_progress:
        task_values = {
            "status": task_pb2.TASK_STATUS_PENDING,
            "reason": f"its account's credential was refused: {reason}",
        }
        notes.append(Note("task:queued", "task", {"reason": "credentials_refused"}))
    return Settlement(agent_values, task_values, notes, account_unusable_reason=reason[:REASON_LIMIT])


def _failed(
    agent_values: dict[str, Any],
    task: task_pb2.Task | None,
    outcome: AgentOutcome,
    now: datetime,
    *,
    output_tail: str,
    delays: Sequence[float],
) -> Settlement:
    error = outcome.error or ("crashed" if outcome.kind == OutcomeKind.CRASH else "failed")
    agent_values |= {"status": agent_pb2.AGENT_STATUS_CRASHED, "error": error[:REASON_LIMIT]}
    notes = [Note("agent:crashed", "agent", {"error": error, "exit_code": outcome.exit_code})]
    if task is None:
        return Settlement(agent_values, None, notes)
    decision = after_failure(task.retry_count, now, delays)
    reason = failure_reason(error, output_tail)
    task_values: dict[str, Any] = {"status": decision.status, "retry_count": decision.retry_count, "reason": reason}
    details: dict[str, Any] = {"retry_count": decision.retry_count, "error": error}
    if decision.next_attempt_time is not None:
        task_values["next_attempt_time"] = decision.next_attempt_time
        details["next_attempt_time"] = decision.next_attempt_time.isoformat()
    notes.append(Note(decision.event, "task", details))
    return Settlement(agent_values, task_values, notes)


def never_started(task: task_pb2.Task | None, reason: str) -> Settlement:
    """A run whose process never started spends no attempt: the agent is closed, the task waits."""
    agent_values = {
        "status": agent_pb2.AGENT_STATUS_STOPPED,
        "outcome": agent_pb2.AGENT_OUTCOME_NEVER_STARTED,
        "error": reason[:REASON_LIMIT],
    }
    notes = [Note("agent:stopped", "agent", {"outcome": "AGENT_OUTCOME_NEVER_STARTED", "error": reason})]
    if task is None or task.status != task_pb2.TASK_STATUS_IN_PROGRESS:
        return Settlement(agent_values, None, notes)
    task_values = {"status": task_pb2.TASK_STATUS_PENDING, "reason": reason[:REASON_LIMIT]}
    notes.append(Note("task:queued", "task", {"reason": "never_started"}))
    return Settlement(agent_values, task_values, notes)


def orphaned(
    task: task_pb2.Task, now: datetime, delays: Sequence[float] = DEFAULT_RETRY_DELAYS
) -> tuple[dict[str, Any], Note]:
    """Rule 3: a task IN_PROGRESS with no live agent counts as a crashed attempt."""
    decision = after_failure(task.retry_count, now, delays)
    values: dict[str, Any] = {
        "status": decision.status,
        "retry_count": decision.retry_count,
        "reason": "its agent was gone",
    }
    if decision.next_attempt_time is not None:
        values["next_attempt_time"] = decision.next_attempt_time
    return values, Note(decision.event, "task", {"retry_count": decision.retry_count, "reason": "no live agent"})
