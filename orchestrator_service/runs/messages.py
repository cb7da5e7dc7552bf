"""What a run says to the person: its report's `messages`, stored for the person (MessageService)
and shown in `cw inbox`; one that requires a response makes the agent wait for the reply
(runs/steps.py `waiting`, conversations/person.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cw.store.v1 import agent_pb2, message_pb2
from orchestrator_service.agents.claude_outcome import clip

MAX_MESSAGES = 10
MESSAGE_BYTES = 16 * 1024


def messages_from(report: Mapping[str, Any], agent: agent_pb2.Agent) -> list[message_pb2.CreateMessageRequest]:
    """`"messages": ["text", {"content": "...", "requires_response": true}]` as messages to the person."""
    items = report.get("messages")
    if not isinstance(items, list):
        return []
    found = []
    for item in items[:MAX_MESSAGES]:
        content = item if isinstance(item, str) else item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, str) or not content.strip():
            continue
        answer_wanted = isinstance(item, dict) and item.get("requires_response") is True
        message = message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
            sender_id=agent.id,
            recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
            type=message_pb2.MESSAGE_TYPE_QUESTION if answer_wanted else message_pb2.MESSAGE_TYPE_INFO,
            content=clip(content, MESSAGE_BYTES),
            requires_response=answer_wanted,
        )
        found.append(message_pb2.CreateMessageRequest(message=message))
    return found
