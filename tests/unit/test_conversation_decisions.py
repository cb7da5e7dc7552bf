"""Pure decisions about conversations (orchestrator_service/conversations/decide.py): whom a question
is for, what a pending conversation needs, what an answering run answered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cw.store.v1 import agent_pb2, conversation_pb2, task_pb2
from orchestrator_service.conversations import decide
from orchestrator_service.dispatch import MAX_TASK_RETRIES, AgentOutcome, OutcomeKind

RUNNING = agent_pb2.AGENT_STATUS_RUNNING
WAITING = agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
STOPPED = agent_pb2.AGENT_STATUS_STOPPED


def _agent(agent_id: str, status: int = STOPPED, seconds: int = 0, **fields: str) -> agent_pb2.Agent:
    agent = agent_pb2.Agent(id=agent_id, name=f"{agent_id}-name", status=status, **fields)  # type: ignore[arg-type]
    agent.create_time.FromSeconds(seconds)
    return agent


def test_an_ask_needs_whom_and_what() -> None:
    assert decide.ask_of(AgentOutcome(OutcomeKind.ASK, report={"to": " b ", "question": "q?"})) == decide.Ask("b", "q?")
    for report in ({"to": "b"}, {"question": "q"}, {"to": "", "question": "q"}, {"to": 3, "question": "q"}):
        assert decide.ask_of(AgentOutcome(OutcomeKind.ASK, report=report)) is None


def test_the_recipient_is_the_named_agent_or_the_task_s_newest_agent() -> None:
    ask, asker = decide.Ask("x", "q"), _agent("a")
    named = _agent("b")
    assert decide.recipient(ask, asker, named, []) == (named, "")
    older, newer = _agent("c1", seconds=1), _agent("c2", seconds=2)
    assert decide.recipient(ask, asker, None, [newer, older])[0] == newer
    nobody, why = decide.recipient(ask, asker, None, [])
    assert nobody is None and why.startswith("cw: no agent or task named 'x'")
    self_ask, why = decide.recipient(ask, asker, asker, [])
    assert self_ask is None and "cannot ask itself" in why


def test_the_asker_waits_on_the_conversation_by_its_id() -> None:
    questions = decide.waiting_question("conv1", decide.Ask("b", "q?"))
    assert json.loads(questions) == [{"id": "conv1", "question": "q?", "to": "b"}]
    assert decide.asks_an_agent(agent_pb2.Agent(pending_questions=questions)) == {"conv1"}
    person = json.dumps([{"id": "q1", "question": "for a person"}])
    assert decide.asks_an_agent(agent_pb2.Agent(pending_questions=person)) == set()
    assert decide.asks_an_agent(agent_pb2.Agent(pending_questions="not json")) == set()


CONVERSATION = conversation_pb2.Conversation(id="conv1", from_agent_id="a", to_agent_id="b")
COMPLETED_TASK = task_pb2.Task(id="t", status=task_pb2.TASK_STATUS_COMPLETED)


@pytest.mark.parametrize(
    ("asker", "answerer", "task", "others", "expected"),
    [
        (_agent("a", WAITING), _agent("b"), COMPLETED_TASK, False, decide.RESUME),
        (_agent("a", RUNNING), _agent("b"), None, False, decide.RESUME),  # the asker's settle in progress
        (_agent("a", WAITING), _agent("b", RUNNING), COMPLETED_TASK, False, decide.WAIT),  # after its run
        (_agent("a", WAITING), _agent("b", RUNNING, conversation_id="conv1"), COMPLETED_TASK, False, decide.WAIT),
        (_agent("a", WAITING), _agent("b"), task_pb2.Task(status=task_pb2.TASK_STATUS_PENDING), False, decide.WAIT),
        (_agent("a", WAITING), _agent("b"), COMPLETED_TASK, True, decide.WAIT),  # another agent on its task
        (_agent("a", STOPPED), _agent("b"), COMPLETED_TASK, False, decide.ANSWER),  # nobody waits
        (None, _agent("b"), COMPLETED_TASK, False, decide.ANSWER),
        (_agent("a", WAITING), None, None, False, decide.ANSWER),  # the recipient is gone
        (_agent("a", WAITING), _agent("b", WAITING), COMPLETED_TASK, False, decide.ANSWER),  # no deadlock
        (_agent("a", WAITING), _agent("b", STOPPED, conversation_id="conv1"), COMPLETED_TASK, False, decide.ANSWER),
    ],
)
def test_what_a_pending_conversation_needs(
    asker: agent_pb2.Agent | None,
    answerer: agent_pb2.Agent | None,
    task: task_pb2.Task | None,
    others: bool,
    expected: str,
) -> None:
    step = decide.next_step(CONVERSATION, asker, answerer, task, others)
    assert step.action == expected
    assert (step.text.startswith("cw: ")) == (expected == decide.ANSWER)


def test_what_an_answering_run_answered() -> None:
    assert decide.answer_of(AgentOutcome(OutcomeKind.ANSWER, report={"answer": "42"}), "b") == ("42", True)
    assert decide.answer_of(AgentOutcome(OutcomeKind.DONE, summary="claude's last words"), "b") == (
        "claude's last words",
        True,
    )
    for outcome, why in [
        (AgentOutcome(OutcomeKind.CRASH, error="killed or vanished"), "killed or vanished"),
        (AgentOutcome(OutcomeKind.QUESTIONS), "it asked questions instead"),
        (AgentOutcome(OutcomeKind.ANSWER, report={"answer": "  "}), "it ended with answer"),
        (AgentOutcome(OutcomeKind.DONE), "it ended with done"),
    ]:
        assert decide.answer_of(outcome, "b") == (f"cw: b could not answer: {why}", False)


def test_the_question_prompt_says_how_to_answer() -> None:
    prompt = decide.discuss_prompt("a-name", task_pb2.Task(name="Users table"), "which column?")
    assert prompt.startswith("# A question from agent a-name (working on task 'Users table')")
    assert "which column?" in prompt and '{"status": "answer"' in prompt and "$CW_SIGNAL_FILE" in prompt


def test_the_question_prompt_tells_the_answerer_what_both_sides_work_on() -> None:
    """Before, an answering run was given only the question, which a stateless agent cannot answer."""
    asker = task_pb2.Task(name="API", description="Add the endpoints over the users table.")
    mine = task_pb2.Task(id="t1", name="Users table", description="Create it.", summary="made users(email)")
    own = decide.OwnWork(mine, {"app": ["db/users.sql", "db/index.sql"], "docs": []})
    prompt = decide.discuss_prompt("a-name", asker, "which column is unique?", own)
    assert "## The asker's task\n\nAdd the endpoints over the users table." in prompt
    assert "## Your task: Users table (t1)\n\nCreate it." in prompt and "What you reported: made users(email)" in prompt
    assert "- app: db/users.sql, db/index.sql" in prompt and "- docs" not in prompt


NOW = datetime(2026, 12, 18, 12, 0, tzinfo=UTC)


def test_a_failed_answer_run_is_retried_like_a_task_run_then_answered() -> None:
    pending = conversation_pb2.Conversation(id="conv1")
    first = decide.after_failed_answer(pending, "cw: b could not answer: crashed", NOW, (5.0, 30.0))
    assert (first.attempts, first.next_attempt_time) == (1, NOW + timedelta(seconds=5))
    pending.attempts = 2
    third = decide.after_failed_answer(pending, "why", NOW, (5.0, 30.0))
    assert (third.attempts, third.next_attempt_time) == (3, NOW + timedelta(seconds=30))  # the last delay repeats
    pending.attempts = MAX_TASK_RETRIES
    last = decide.after_failed_answer(pending, "cw: b could not answer: crashed", NOW, (5.0,))
    assert last.next_attempt_time is None and last.attempts == MAX_TASK_RETRIES + 1
    assert last.text == f"cw: b could not answer: crashed ({MAX_TASK_RETRIES + 1} attempts)"


def test_the_next_answer_run_waits_for_its_time() -> None:
    later = conversation_pb2.Conversation(id="conv1", attempts=1)
    later.next_attempt_time.FromDatetime(NOW + timedelta(seconds=7))
    asker, answerer = _agent("a", WAITING), _agent("b")
    step = decide.next_step(later, asker, answerer, COMPLETED_TASK, False, now=NOW)
    assert (step.action, step.after) == (decide.WAIT, 7.0)
    due = decide.next_step(later, asker, answerer, COMPLETED_TASK, False, now=NOW + timedelta(seconds=8))
    assert due.action == decide.RESUME
