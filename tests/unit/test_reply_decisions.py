"""Pure decisions about agents' messages and the person's replies
(orchestrator_service/conversations/replies.py)."""

from __future__ import annotations

import json

from cw.store.v1 import agent_pb2, message_pb2
from orchestrator_service.conversations import replies

USER, AGENT = message_pb2.PARTICIPANT_TYPE_USER, message_pb2.PARTICIPANT_TYPE_AGENT
PENDING, READ = message_pb2.MESSAGE_STATUS_PENDING, message_pb2.MESSAGE_STATUS_READ


def _reply(reply_id: str, parent: str, content: str, seconds: int, status: int = PENDING) -> message_pb2.Message:
    message = message_pb2.Message(
        id=reply_id,
        sender_type=USER,
        parent_message_id=parent,
        content=content,
        status=status,  # type: ignore[arg-type]
    )
    message.create_time.FromSeconds(seconds)
    return message


def _waiting(*questions: dict[str, str]) -> agent_pb2.Agent:
    status = agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    return agent_pb2.Agent(id="a", status=status, pending_questions=json.dumps(list(questions)))


def test_only_messages_that_require_a_response_are_waited_for() -> None:
    asked = message_pb2.Message(id="m1", content="which db?", requires_response=True)
    told = message_pb2.Message(id="m2", content="fyi")
    questions = replies.message_questions([asked, told])
    assert questions == [{"id": "m1", "question": "which db?", "kind": "message"}]
    agent = _waiting(*questions)
    assert replies.awaited_messages(agent) == {"m1"} and replies.waits_only_for_replies(agent)
    mixed = _waiting(*questions, {"id": "q1", "question": "tabs?"})
    assert replies.awaited_messages(mixed) == {"m1"} and not replies.waits_only_for_replies(mixed)
    running = agent_pb2.Agent(status=agent_pb2.AGENT_STATUS_RUNNING, pending_questions=agent.pending_questions)
    assert replies.awaited_messages(running) == set()


def test_the_newest_reply_answers_once_every_awaited_message_has_one() -> None:
    first, second = _reply("r1", "m1", "sqlite", 1), _reply("r2", "m1", "postgres", 2)
    agent_note = message_pb2.Message(id="x", sender_type=AGENT, parent_message_id="m1", content="not a reply")
    assert replies.answers_from({"m1"}, [second, first, agent_note]) == {"m1": "postgres"}
    assert replies.answers_from({"m1", "m2"}, [first]) is None
    assert replies.answers_from(set(), [first]) is None


def test_undelivered_replies_are_the_pending_ones_oldest_first() -> None:
    late, early, read = _reply("r2", "m", "b", 2), _reply("r1", "m", "a", 1), _reply("r0", "m", "c", 0, READ)
    assert [m.id for m in replies.undelivered([late, read, early])] == ["r1", "r2"]
    prompt = replies.replies_prompt([replies.Exchange(early, message_pb2.Message(id="m", content="which db?"))])
    assert "which db?" in prompt and "The person replied: a" in prompt
    assert replies.replies_prompt([]) == ""
    assert replies.delivered_ids('["r1", 3, "r2"]') == ["r1", "r2"]
    assert replies.delivered_ids("garbage") == [] and replies.delivered_ids(None) == []


def test_a_reply_is_read_once_a_run_that_took_it_in_ends_well() -> None:
    stopped, waiting = agent_pb2.AGENT_STATUS_STOPPED, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert replies.keeps_what_it_read({"status": stopped, "outcome": agent_pb2.AGENT_OUTCOME_DONE})
    assert replies.keeps_what_it_read({"status": waiting})
    assert not replies.keeps_what_it_read({"status": agent_pb2.AGENT_STATUS_CRASHED})
    assert not replies.keeps_what_it_read({"status": stopped, "outcome": agent_pb2.AGENT_OUTCOME_RATE_LIMITED})
