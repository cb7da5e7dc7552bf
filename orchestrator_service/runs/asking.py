"""A run that asks another agent (`{"status": "ask", "to": ..., "question": ...}`): the conversation
is stored (PENDING, or ANSWERED at once by cw when nobody can answer), then the asker
WAITING_FOR_INPUT on it, its messages and the replies it read in the same transaction. What
follows is the conversations controller's (conversations/controller.py): the recipient resumed to
answer (runs/answer.py), then the asker resumed with the answer."""

from __future__ import annotations

import json
import logging

from cw.store.v1 import agent_pb2, conversation_pb2
from orchestrator_service import outcomes
from orchestrator_service.controllers.agents import AgentController, RunEnd
from orchestrator_service.controllers.context import Context
from orchestrator_service.conversations import decide
from orchestrator_service.conversations.person import Replies
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind
from orchestrator_service.events import event
from orchestrator_service.runs.messages import messages_from
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import update

log = logging.getLogger("cw.orchestrator")
ANSWERED = conversation_pb2.CONVERSATION_STATUS_ANSWERED
ID_BYTES = 128


async def settle_ask(
    ctx: Context,
    agents: AgentController,
    found_replies: Replies,
    end: RunEnd,
) -> None:
    """The conversation stored, then the asker waiting on it (a malformed ask: a failed attempt)."""
    agent, task, outcome = end.agent, end.task, end.outcome
    ask = decide.ask_of(outcome)
    if ask is None:
        error = AgentOutcome(OutcomeKind.ERROR, error='an "ask" needs "to" and "question"', exit_code=outcome.exit_code)
        settled = outcomes.settle(agent, task, error, ctx.clock(), delays=ctx.settings.retry_delays)
        await agents.write(agent, task, settled)
        return
    store = ctx.store
    found, why = decide.recipient(ask, agent, await _named(store, ask.to), await _task_agents(store, ask.to))
    conversation = conversation_pb2.Conversation(
        from_agent_id=agent.id,
        to_agent_id=found.id if found is not None else agent.id,
        initiative_id=agent.initiative_id,
        phase_id=task.phase_id if task is not None else "",
        task_id=task.id if task is not None else "",
        question=ask.question,
    )
    if found is None:
        conversation.status, conversation.answer = ANSWERED, why
    stamp = agent.update_time
    request_id = f"ask-{agent.id}-{stamp.seconds}.{stamp.nanos}-{found.id if found is not None else ''}"
    create = conversation_pb2.CreateConversationRequest(conversation=conversation, request_id=request_id)
    created = (await ctx.writer.append([], [create])).rows[0].conversation
    values: dict[str, object] = {
        "status": agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT,
        "pending_questions": decide.waiting_question(created.id, ask),
        "exit_code": outcome.exit_code,
        "result": json.dumps({"status": "ask", "to": ask.to}, ensure_ascii=False),
    }
    if outcome.session_id and outcome.session_id != agent.session_id:
        values["session_id"] = outcome.session_id
    note = event("agent:waiting_for_input", agent, questions=1, conversation_id=created.id, to=ask.to)
    told = messages_from(outcome.report, agent)
    await ctx.writer.append([note], [update(agent, **values), *told, *await found_replies.delivered(agent)])
    log.info("agent %s asked %s (conversation %s)", agent.name, ask.to, created.id)


async def _named(store: StoreClient, name: str) -> agent_pb2.Agent | None:
    found = await store.call(store.agents.ListAgents, agent_pb2.ListAgentsRequest(name=name, page_size=1))
    return found.agents[0] if found.agents else None


async def _task_agents(store: StoreClient, task_id: str) -> list[agent_pb2.Agent]:
    if len(task_id.encode()) > ID_BYTES:
        return []
    return await store.list_all(store.agents.ListAgents, agent_pb2.ListAgentsRequest(task_id=task_id), "agents")
