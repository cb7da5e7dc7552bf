"""A run resumed to answer another agent's question (RunKind.ANSWER: the agent's row names the
conversation it answers, `conversation_id`).

- Inputs: the recipient's CLI session resumed in discuss mode, the question with the asker's task
  and its own work as the prompt (conversations/decide.py `discuss_prompt`), `CW_CONVERSATION_ID`.
  The conversations controller claims and launches it (conversations/controller.py).
- Settle: the conversation is answered (by the run, or by cw saying why not) and the agent goes
  back to how it was; its task is not touched. A run that gives no answer is a failed attempt,
  counted on the conversation and retried after the tasks' retry delay; after the last, cw answers.
- Then: the answered conversation resumes its asker with the answer (conversations/controller.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import grpc
from google.protobuf.message import Message

from cw.store.v1 import agent_pb2, conversation_pb2, event_pb2
from orchestrator_service.controllers.agent_runs.run_inputs import RunInput
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.controllers.context import Context
from orchestrator_service.conversations import decide
from orchestrator_service.dispatch import AgentOutcome, RunKind
from orchestrator_service.events import event
from orchestrator_service.runs.messages import messages_from
from orchestrator_service.writes import update

PENDING = conversation_pb2.CONVERSATION_STATUS_PENDING


def answer_input(start: decide.AnswerStart) -> RunInput:
    """Pure: the prompt and environment of a run resumed to answer."""
    prompt = decide.discuss_prompt(start.asker_name, start.asker_task, start.conversation.question, start.own)
    environment = {"CW_CONVERSATION_ID": start.conversation.id, "CW_RUN_KIND": AnswerRun.kind.value}
    return RunInput(prompt, environment)


def answered(
    agent: agent_pb2.Agent,
    outcome: AgentOutcome,
    conversation: conversation_pb2.Conversation | None,
    now: datetime,
    delays: Sequence[float],
) -> tuple[list[event_pb2.Event], list[Message]]:
    """Pure: the events and writes that settle an answering run: the agent stopped (its task not
    touched), its messages, and the conversation answered or its failed attempt counted."""
    text, ok = decide.answer_of(outcome, agent.name)
    kind = agent_pb2.AGENT_OUTCOME_DONE if ok else agent_pb2.AGENT_OUTCOME_FAILED
    values: dict[str, object] = {
        "status": agent_pb2.AGENT_STATUS_STOPPED,
        "outcome": kind,
        "conversation_id": None,
        "exit_code": outcome.exit_code,
        "result": json.dumps({"status": outcome.kind, "answer": text}, ensure_ascii=False),
        "error": None if ok else text[:4000],
    }
    if outcome.session_id and outcome.session_id != agent.session_id:
        values["session_id"] = outcome.session_id
    requests: list[Message] = [update(agent, **values), *messages_from(outcome.report, agent)]
    if conversation is not None and conversation.status == PENDING:
        requests += answered_or_retried(conversation, text, ok, now, delays)
    note = event(
        "agent:stopped", agent, outcome=agent_pb2.AgentOutcome.Name(kind), conversation_id=agent.conversation_id
    )
    return [note], requests


def answered_or_retried(
    conversation: conversation_pb2.Conversation, text: str, ok: bool, now: datetime, delays: Sequence[float]
) -> list[Message]:
    """Pure: the answer; or, for a run that gave none, the failed attempt counted and the next one
    due after the tasks' retry delay; after the last attempt, cw's answer saying why."""
    if ok:
        return [conversation_pb2.AnswerConversationRequest(id=conversation.id, answer=text)]
    retry = decide.after_failed_answer(conversation, text, now, delays)
    counted = update(conversation, attempts=retry.attempts, next_attempt_time=retry.next_attempt_time)
    if retry.next_attempt_time is not None:
        return [counted]
    return [counted, conversation_pb2.AnswerConversationRequest(id=conversation.id, answer=retry.text)]


class AnswerRun:
    kind = RunKind.ANSWER

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def inputs(self, start: decide.AnswerStart) -> RunInput:
        return answer_input(start)

    async def settle(self, end: RunEnd) -> bool:
        conversation = self.ctx.cache.conversations.get(end.agent.conversation_id) or await self._read(
            end.agent.conversation_id
        )
        settings = self.ctx.settings
        notes, requests = answered(end.agent, end.outcome, conversation, self.ctx.clock(), settings.retry_delays)
        await self.ctx.writer.append(notes, requests)
        return True

    async def _read(self, conversation_id: str) -> conversation_pb2.Conversation | None:
        """The conversation as stored, not put in the cache (a finished row is no live work)."""
        try:
            found: conversation_pb2.Conversation = await self.ctx.store.get("conversation", conversation_id)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return found
