"""Reads from the store what a planning run is shown (prompts.Material): the initiative's pages
and phases, the run's target, the tasks of the phase concerned, and for a chat turn the session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cw.store.v1 import chat_session_pb2, page_pb2, phase_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.planning.prompts import Material, Row
from orchestrator_service.store_client import StoreClient

CHAT_TARGETS = {"phase": chat_session_pb2.CHAT_TARGET_TYPE_PHASE, "task": chat_session_pb2.CHAT_TARGET_TYPE_TASK}


class TargetGone(Exception):
    """The page, phase or task a planning task works on no longer exists."""


async def found_or_none(store: StoreClient, method: Callable[..., Awaitable[Any]], request: Any) -> Any:
    """The answer, or None for NOT_FOUND."""
    try:
        return await store.call(method, request)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def target_of(store: StoreClient, target_id: str) -> tuple[str, Row] | None:
    """(kind, row) of a page, phase or task id: target ids carry no kind of their own."""
    lookups: list[tuple[str, Callable[..., Awaitable[Any]], Any]] = [
        ("page", store.pages.GetPage, page_pb2.GetPageRequest(id=target_id)),
        ("phase", store.phases.GetPhase, phase_pb2.GetPhaseRequest(id=target_id)),
        ("task", store.tasks.GetTask, task_pb2.GetTaskRequest(id=target_id)),
    ]
    for kind, method, request in lookups:
        row = await found_or_none(store, method, request)
        if row is not None:
            return kind, row
    return None


async def active_chat(store: StoreClient, kind: str, target_id: str) -> chat_session_pb2.ChatSession | None:
    if kind not in CHAT_TARGETS:
        return None
    request = chat_session_pb2.GetActiveChatSessionRequest(target_type=CHAT_TARGETS[kind], target_id=target_id)
    found: chat_session_pb2.ChatSession | None = await found_or_none(
        store, store.chat_sessions.GetActiveChatSession, request
    )
    return found


async def chat_of(store: StoreClient, task: task_pb2.Task) -> chat_session_pb2.ChatSession | None:
    """The active chat session a refine task answers, if it is one's."""
    if dispatch.agent_mode(task) != "refine" or not task.target_id:
        return None
    target = await target_of(store, task.target_id)
    if target is None:
        return None
    session = await active_chat(store, target[0], task.target_id)
    return session if session is not None and session.task_id == task.id else None


async def gather(store: StoreClient, task: task_pb2.Task) -> Material:
    initiative = await store.get_initiative(task.initiative_id)
    material = Material(dispatch.agent_mode(task), task, initiative)
    material.pages = await store.list_all(
        store.pages.ListPages, page_pb2.ListPagesRequest(initiative_id=initiative.id), "pages"
    )
    material.phases = await store.list_all(
        store.phases.ListPhases, phase_pb2.ListPhasesRequest(initiative_id=initiative.id), "phases"
    )
    material.phase_edges = {
        phase.id: [other.id for other in await store.phase_dependencies(phase.id)] for phase in material.phases
    }
    if task.target_id:
        await _add_target(store, material)
    return material


async def _add_target(store: StoreClient, material: Material) -> None:
    task = material.task
    target = await target_of(store, task.target_id)
    if target is None:
        raise TargetGone(f"its target {task.target_id!r} no longer exists")
    material.target_kind, material.target = target
    phase_id = material.default_phase()
    if phase_id:
        material.tasks = await store.list_all(
            store.tasks.ListTasks, task_pb2.ListTasksRequest(phase_id=phase_id), "tasks"
        )
        edges = await store.task_dependencies([row.id for row in material.tasks])
        found: dict[str, list[str]] = {}
        for edge in edges:
            found.setdefault(edge.task_id, []).append(edge.depends_on_task_id)
        material.task_edges = found
    session = await active_chat(store, material.target_kind, task.target_id)
    if session is not None and session.task_id == task.id:
        material.chat_session_id = session.id
        material.messages = await store.list_all(
            store.chat_sessions.ListChatMessages,
            chat_session_pb2.ListChatMessagesRequest(chat_session_id=session.id),
            "chat_messages",
        )
