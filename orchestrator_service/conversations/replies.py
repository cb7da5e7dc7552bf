"""Pure decisions about an agent's messages to the person and the person's replies.

- A run's message with `requires_response` makes the agent wait as for a question: its pending
  questions hold `{"id": MESSAGE_ID, "question": ..., "kind": "message"}`, and the reply to that
  message is its answer (`cw reply`), keyed by the message's id in `CW_ANSWERS_FILE`.
- Every reply the person wrote to one of a task's agents and that no run has read yet (PENDING) is
  shown in the prompt of the task's next run; once that run ends well (done, or waiting to go on in
  its session) the reply is READ, in the settlement's transaction, so no reply is given twice to a
  session and none is lost: a run that never started, crashed or failed leaves it to the task's
  next attempt, a new session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cw.store.v1 import agent_pb2, message_pb2

MESSAGE_QUESTION = "message"
# What a run's prompt may quote of one message and one reply.
QUOTE_CHARS = 4000


def message_questions(created: Iterable[message_pb2.Message]) -> list[dict[str, str]]:
    """The pending questions of an agent that waits for replies to these messages."""
    return [
        {"id": message.id, "question": message.content, "kind": MESSAGE_QUESTION}
        for message in created
        if message.requires_response
    ]


def _pending_questions(agent: agent_pb2.Agent) -> list[dict[str, object]]:
    try:
        questions = json.loads(agent.pending_questions or "[]")
    except ValueError:
        return []
    return [q for q in questions if isinstance(q, dict)] if isinstance(questions, list) else []


def awaited_messages(agent: agent_pb2.Agent) -> set[str]:
    """The messages whose replies the agent waits for (none unless WAITING_FOR_INPUT)."""
    if agent.status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
        return set()
    return {str(q["id"]) for q in _pending_questions(agent) if q.get("kind") == MESSAGE_QUESTION and q.get("id")}


def waits_only_for_replies(agent: agent_pb2.Agent) -> bool:
    """Replies alone resume it: it asked the person nothing else (else `cw agent answer` does)."""
    questions = _pending_questions(agent)
    return bool(questions) and all(q.get("kind") == MESSAGE_QUESTION for q in questions)


def is_user_reply(message: message_pb2.Message) -> bool:
    return message.sender_type == message_pb2.PARTICIPANT_TYPE_USER and bool(message.parent_message_id)


def undelivered(received: Iterable[message_pb2.Message]) -> list[message_pb2.Message]:
    """The person's replies no run has read yet, oldest first."""
    found = [m for m in received if is_user_reply(m) and m.status == message_pb2.MESSAGE_STATUS_PENDING]
    return sorted(found, key=lambda m: (m.create_time.seconds, m.create_time.nanos, m.id))


def answers_from(awaited: Iterable[str], replies: Iterable[message_pb2.Message]) -> dict[str, str] | None:
    """`{MESSAGE_ID: reply}` once every awaited message has a reply (the newest counts), else None."""
    newest: dict[str, message_pb2.Message] = {}
    for reply in replies:
        if not is_user_reply(reply):
            continue
        known = newest.get(reply.parent_message_id)
        if known is None or reply.create_time.ToNanoseconds() >= known.create_time.ToNanoseconds():
            newest[reply.parent_message_id] = reply
    wanted = set(awaited)
    if not wanted or not wanted <= set(newest):
        return None
    return {message_id: newest[message_id].content for message_id in sorted(wanted)}


@dataclass(frozen=True)
class Exchange:
    """A reply given to a run, with the message it answers (None when that is gone)."""

    reply: message_pb2.Message
    message: message_pb2.Message | None


def replies_prompt(exchanges: Sequence[Exchange]) -> str:
    """What a run reads after its task: the person's replies to its agents' messages."""
    if not exchanges:
        return ""
    lines = ["", "## Replies from the person to your messages"]
    for exchange in exchanges:
        said = exchange.message.content if exchange.message is not None else "(a message)"
        lines += [
            f"- You wrote (message {exchange.reply.parent_message_id}): {said[:QUOTE_CHARS]}",
            f"  The person replied: {exchange.reply.content[:QUOTE_CHARS]}",
        ]
    return "\n".join(lines) + "\n"


def delivered_ids(text: str | None) -> list[str]:
    """The replies a run was given, as its control directory records them."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(item) for item in found if isinstance(item, str)] if isinstance(found, list) else []


def keeps_what_it_read(agent_values: Mapping[str, Any]) -> bool:
    """Whether a settled run's session took in what it was given: it is done, or it waits to go on
    (a failed run's task starts over in a new session, which must be told again)."""
    status = agent_values.get("status")
    done = status == agent_pb2.AGENT_STATUS_STOPPED and agent_values.get("outcome") == agent_pb2.AGENT_OUTCOME_DONE
    return done or status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
