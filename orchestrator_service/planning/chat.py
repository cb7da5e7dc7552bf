"""Chat: a person refines a phase or a task message by message with one refine agent.

A session (ChatSessionService) has a refine task (`task_id`) whose agent answers it. Each message
queues a turn of that task; the turn continues the agent's CLI session (Launches, continuation),
and its settlement stores the reply as the assistant message, linked to the change set that applied
the turn's proposals. Sending and settling hold the session's lock (this process is the only
orchestrator: cw_edge/ownership.py), so a message that arrives while a turn runs is seen by that
turn's settlement, which queues the next turn: no message is left unanswered. Every step of a
turn's settlement is idempotent (request ids derived from the message answered), so a settlement
done again after a crash repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, chat_session_pb2, proposal_pb2, task_pb2
from orchestrator_service.controllers.context import Context
from orchestrator_service.errors import BadRequest
from orchestrator_service.events import event
from orchestrator_service.outcomes import Note, Settlement
from orchestrator_service.planning.material import CHAT_TARGETS, active_chat
from orchestrator_service.planning.report import RunView
from orchestrator_service.writes import Stale, update

USER, ASSISTANT = chat_session_pb2.CHAT_ROLE_USER, chat_session_pb2.CHAT_ROLE_ASSISTANT
ATTEMPTS = 5
# A turn's task is queued again from these (a finished turn, or one that failed for good).
TURN_OVER = (task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_BLOCKED)


def unanswered(messages: list[chat_session_pb2.ChatMessage], after: str = "") -> list[chat_session_pb2.ChatMessage]:
    """The person's messages after the last reply, or after message `after` when given."""
    ids = [message.id for message in messages]
    if after and after in ids:
        start = ids.index(after) + 1
    else:
        replies = [index for index, message in enumerate(messages) if message.role == ASSISTANT]
        start = replies[-1] + 1 if replies else 0
    return [message for message in messages[start:] if message.role == USER]


class Chats:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        async with self._locks[session_id]:
            yield

    async def messages(self, session_id: str) -> list[chat_session_pb2.ChatMessage]:
        store = self.ctx.store
        request = chat_session_pb2.ListChatMessagesRequest(chat_session_id=session_id)
        found: list[chat_session_pb2.ChatMessage] = await store.list_all(
            store.chat_sessions.ListChatMessages, request, "chat_messages"
        )
        return found

    # ---- a person's message ---------------------------------------------------------------------

    async def send(self, request: orchestrator_pb2.SendChatMessageRequest) -> orchestrator_pb2.SendChatMessageResponse:
        kind = next((name for name, value in CHAT_TARGETS.items() if value == request.target_type), None)
        if kind is None:
            raise BadRequest("target_type", "is required: phase or task")
        if not request.target_id:
            raise BadRequest("target_id", "is required")
        if not request.content.strip():
            raise BadRequest("content", "is required")
        target = await self.ctx.store.get(kind, request.target_id)
        async with self.lock(f"{kind}:{target.id}"):  # one session per target, however many send at once
            session = await active_chat(self.ctx.store, kind, target.id)
            if session is None or not session.task_id:
                session = await self._open(session, kind, target, request.request_id)
        async with self.lock(session.id):
            message = await self._store_message(session, request.content, USER, request.request_id)
            task = await self._queue_turn(session.task_id)
        return orchestrator_pb2.SendChatMessageResponse(chat_session=session, message=message, task=task)

    async def _open(
        self, session: chat_session_pb2.ChatSession | None, kind: str, target: Any, request_id: str
    ) -> chat_session_pb2.ChatSession:
        """The session's refine task (and the session, when there is none)."""
        store = self.ctx.store
        task = task_pb2.Task(
            initiative_id=target.initiative_id,
            name=f"Chat about {kind} {target.name}"[:200],
            description=f"Answer the person's messages about the {kind} {target.name!r}.",
            category=task_pb2.TASK_CATEGORY_REFINE,
            target_id=target.id,
        )
        created = await store.call(
            store.tasks.CreateTask,
            task_pb2.CreateTaskRequest(task=task, request_id=f"{request_id}.task" if request_id else ""),
        )
        if session is not None:
            mask = field_mask_pb2.FieldMask(paths=["task_id"])
            changed = chat_session_pb2.ChatSession(id=session.id, task_id=created.id)
            request = chat_session_pb2.UpdateChatSessionRequest(chat_session=changed, update_mask=mask)
            updated: chat_session_pb2.ChatSession = await store.call(store.chat_sessions.UpdateChatSession, request)
            return updated
        new = chat_session_pb2.ChatSession(
            target_type=CHAT_TARGETS[kind], target_id=target.id, initiative_id=target.initiative_id, task_id=created.id
        )
        opened: chat_session_pb2.ChatSession = await store.call(
            store.chat_sessions.CreateChatSession,
            chat_session_pb2.CreateChatSessionRequest(
                chat_session=new, request_id=f"{request_id}.session" if request_id else ""
            ),
        )
        return opened

    async def _store_message(
        self,
        session: chat_session_pb2.ChatSession,
        content: str,
        role: chat_session_pb2.ChatRole.ValueType,
        request_id: str,
        change_set_id: str = "",
    ) -> chat_session_pb2.ChatMessage:
        store = self.ctx.store
        message = chat_session_pb2.ChatMessage(
            chat_session_id=session.id, role=role, content=content, change_set_id=change_set_id
        )
        stored: chat_session_pb2.ChatMessage = await store.call(
            store.chat_sessions.CreateChatMessage,
            chat_session_pb2.CreateChatMessageRequest(chat_message=message, request_id=request_id),
        )
        return stored

    async def _queue_turn(self, task_id: str) -> task_pb2.Task:
        """The task goes out again when its last turn is over; a turn queued or running already
        sees the message (or its settlement queues the next)."""
        for _ in range(ATTEMPTS):
            task = await self.ctx.store.get_task(task_id)
            never_queued = task.status == task_pb2.TASK_STATUS_PENDING and not task.HasField("queue_time")
            if task.status not in TURN_OVER and not never_queued:
                return task
            queued = update(
                task,
                status=task_pb2.TASK_STATUS_PENDING,
                queue_time=self.ctx.clock(),
                retry_count=0,
                reason=None,
                next_attempt_time=None,
                merge_time=None,
            )
            try:
                answer = await self.ctx.writer.append([event("task:queued", task, reason="chat")], [queued])
            except Stale:
                continue
            return answer.rows[0].task
        return await self.ctx.store.get_task(task_id)

    # ---- a turn's settlement --------------------------------------------------------------------

    async def answered(
        self,
        agent: agent_pb2.Agent,
        view: RunView,
        reply: str,
        proposals: list[proposal_pb2.Proposal],
        settlement: Settlement,
    ) -> Settlement:
        """Applies the turn's proposals and stores its reply; the settlement, with the task queued
        again when messages came in meanwhile. Call with the session's lock held."""
        store = self.ctx.store
        change_set_id, note = "", ""
        if proposals:
            request = proposal_pb2.AcceptProposalsRequest(
                proposal_ids=[p.id for p in proposals], chat_session_id=view.chat_session_id
            )
            try:
                change_set_id = (await store.call(store.proposals.AcceptProposals, request)).change_set_id
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                    raise
                note = f"\n\n(cw could not apply the proposed changes: {error.details()})"
        session = await store.call(
            store.chat_sessions.GetChatSession, chat_session_pb2.GetChatSessionRequest(id=view.chat_session_id)
        )
        await self._store_message(
            session, (reply or "(no reply)") + note, ASSISTANT, f"reply.{view.answering or agent.id}", change_set_id
        )
        if session.agent_id != agent.id:
            mask = field_mask_pb2.FieldMask(paths=["agent_id"])
            changed = chat_session_pb2.ChatSession(id=session.id, agent_id=agent.id)
            await store.call(
                store.chat_sessions.UpdateChatSession,
                chat_session_pb2.UpdateChatSessionRequest(chat_session=changed, update_mask=mask),
            )
        still_open = session.status == chat_session_pb2.CHAT_SESSION_STATUS_ACTIVE
        if settlement.task is None or not still_open or not unanswered(await self.messages(session.id), view.answering):
            return settlement
        return self._next_turn(settlement)

    def _next_turn(self, settlement: Settlement) -> Settlement:
        """Instead of completing, the task is queued for the messages that came in meanwhile."""
        assert settlement.task is not None
        task_values = {
            **settlement.task,
            "status": task_pb2.TASK_STATUS_PENDING,
            "queue_time": self.ctx.clock(),
            "merge_time": None,
        }
        notes = [note for note in settlement.notes if note.type != "task:completed"]
        notes.append(Note("task:queued", "task", {"reason": "chat"}))
        return replace(settlement, task=task_values, notes=notes)
