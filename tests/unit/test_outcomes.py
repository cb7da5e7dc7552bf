"""The settlement policy: what a finished run means for its agent, task and account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service import outcomes
from orchestrator_service.dispatch import MAX_TASK_RETRIES, AgentOutcome, OutcomeKind

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RUNNING_TASK = task_pb2.Task(id="t", status=task_pb2.TASK_STATUS_IN_PROGRESS)
AGENT = agent_pb2.Agent(id="a", task_id="t", status=agent_pb2.AGENT_STATUS_RUNNING)


def test_done_completes_the_task_with_its_summary() -> None:
    settled = outcomes.settle(AGENT, RUNNING_TASK, AgentOutcome(OutcomeKind.DONE, summary="wrote it", exit_code=0), NOW)
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_STOPPED
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_DONE
    assert settled.task == {"status": task_pb2.TASK_STATUS_COMPLETED, "summary": "wrote it", "reason": None}
    assert [note.type for note in settled.notes] == ["agent:stopped", "task:completed"]


def test_a_task_a_person_stopped_is_left_alone() -> None:
    blocked = task_pb2.Task(id="t", status=task_pb2.TASK_STATUS_BLOCKED)
    settled = outcomes.settle(AGENT, blocked, AgentOutcome(OutcomeKind.DONE, exit_code=0), NOW)
    assert settled.task is None


def test_questions_keep_the_task_running() -> None:
    questions = [{"id": "q1", "question": "?"}]
    settled = outcomes.settle(AGENT, RUNNING_TASK, AgentOutcome(OutcomeKind.QUESTIONS, questions=questions), NOW)
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert json.loads(settled.agent["pending_questions"]) == questions
    assert settled.task is None


def test_rate_limit_rests_the_account_and_spends_no_attempt() -> None:
    agent = agent_pb2.Agent(id="a", task_id="t", account_id="acc")
    settled = outcomes.settle(agent, RUNNING_TASK, AgentOutcome(OutcomeKind.RATE_LIMITED, retry_after_seconds=90), NOW)
    assert settled.account_rests_until == NOW + timedelta(seconds=90)
    assert settled.task is not None and settled.task["status"] == task_pb2.TASK_STATUS_PENDING
    assert "retry_count" not in settled.task


def test_a_named_reset_ends_the_rest_exactly_then_whatever_the_settlements_clock() -> None:
    agent = agent_pb2.Agent(id="a", task_id="t", account_id="acc")
    reset = NOW + timedelta(hours=3)
    limited = AgentOutcome(OutcomeKind.RATE_LIMITED, retry_after_seconds=3 * 3600, rest_until=reset)
    settled = outcomes.settle(agent, RUNNING_TASK, limited, NOW + timedelta(seconds=1))
    assert settled.account_rests_until == reset


def test_a_crash_is_retried_after_a_pause_with_its_reason_and_output() -> None:
    crash = AgentOutcome(OutcomeKind.CRASH, error="exited with 3", exit_code=3)
    settled = outcomes.settle(AGENT, RUNNING_TASK, crash, NOW, output_tail="Traceback\nBoom", delays=(5, 30, 120))
    assert settled.task is not None
    assert settled.task["status"] == task_pb2.TASK_STATUS_PENDING and settled.task["retry_count"] == 1
    assert settled.task["next_attempt_time"] == NOW + timedelta(seconds=5)
    assert settled.task["reason"].startswith("exited with 3") and settled.task["reason"].endswith("Boom")
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_CRASHED


def test_the_last_failure_blocks_the_task() -> None:
    task = task_pb2.Task(id="t", status=task_pb2.TASK_STATUS_IN_PROGRESS, retry_count=MAX_TASK_RETRIES)
    settled = outcomes.settle(AGENT, task, AgentOutcome(OutcomeKind.ERROR, error="gave up", exit_code=0), NOW)
    assert settled.task is not None and settled.task["status"] == task_pb2.TASK_STATUS_BLOCKED
    assert "next_attempt_time" not in settled.task
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_FAILED


@pytest.mark.parametrize(("retry_count", "pause"), [(1, 5), (2, 30), (3, 120), (9, 120)])
def test_pauses_grow_then_repeat(retry_count: int, pause: float) -> None:
    assert outcomes.retry_delay(retry_count, (5, 30, 120)) == pause


@given(st.integers(min_value=0, max_value=50))
def test_after_failure_follows_rule_five(retry_count: int) -> None:
    decision = outcomes.after_failure(retry_count, NOW)
    if retry_count < MAX_TASK_RETRIES:
        assert decision.retry_count == retry_count + 1 and decision.next_attempt_time is not None
        assert decision.next_attempt_time > NOW
    else:
        assert decision.status == task_pb2.TASK_STATUS_BLOCKED and decision.next_attempt_time is None


def test_a_run_that_never_started_spends_no_attempt() -> None:
    settled = outcomes.never_started(RUNNING_TASK, "the agent's process never started")
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_NEVER_STARTED
    assert settled.task is not None and settled.task["status"] == task_pb2.TASK_STATUS_PENDING
    assert "retry_count" not in settled.task


def test_an_orphaned_task_counts_a_crash() -> None:
    values, note = outcomes.orphaned(task_pb2.Task(id="t", retry_count=0), NOW)
    assert values["retry_count"] == 1 and note.type == "task:retried"


def test_an_agents_words_are_cut_to_what_the_store_keeps() -> None:
    huge = "é" * 200_000
    questions = [{"id": f"q{i}", "question": huge} for i in range(50)]
    asked = outcomes.settle(AGENT, RUNNING_TASK, AgentOutcome(OutcomeKind.QUESTIONS, questions=questions), NOW)
    assert len(asked.agent["pending_questions"].encode()) < 64 * 1024
    done = outcomes.settle(AGENT, RUNNING_TASK, AgentOutcome(OutcomeKind.DONE, summary=huge, exit_code=0), NOW)
    assert done.task is not None and len(done.task["summary"].encode()) <= outcomes.SUMMARY_BYTES
    assert len(done.agent["result"].encode()) < 64 * 1024


def test_a_refused_credential_sets_the_account_aside_and_spends_no_attempt() -> None:
    agent = agent_pb2.Agent(id="a", task_id="t", account_id="acc")
    refused = AgentOutcome(OutcomeKind.CREDENTIALS_REFUSED, error="Invalid API key · Fix external API key", exit_code=1)
    settled = outcomes.settle(agent, RUNNING_TASK, refused, NOW)
    assert settled.account_unusable_reason == "Invalid API key · Fix external API key"
    assert settled.account_rests_until is None
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_STOPPED
    assert settled.task is not None and settled.task["status"] == task_pb2.TASK_STATUS_PENDING
    assert "retry_count" not in settled.task and "Invalid API key" in settled.task["reason"]
    assert [note.type for note in settled.notes] == ["agent:stopped", "task:queued"]


def test_a_refused_key_of_the_environment_is_a_failed_attempt() -> None:
    """No account to set aside: retrying forever at no cost would hide it from the person."""
    refused = AgentOutcome(OutcomeKind.CREDENTIALS_REFUSED, error="Invalid API key · Fix external API key", exit_code=1)
    settled = outcomes.settle(AGENT, RUNNING_TASK, refused, NOW)
    assert settled.account_unusable_reason is None
    assert settled.task is not None and settled.task["retry_count"] == 1
    assert settled.agent["outcome"] == agent_pb2.AGENT_OUTCOME_FAILED
