"""What the orchestrator's RPCs do about phases, tasks and agents: read the current row, check the
transition, write it with its event under a precondition, and let the controllers do the rest.

No handler holds a lock that git or a process holds: a handler that loses a race to a controller
(or to another handler) sees ABORTED from the store, reads again and decides again.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.controllers.agent_runs.workdirs import CannotStartYet
from orchestrator_service.core import Orchestrator
from orchestrator_service.errors import BadRequest, NotAllowedNow
from orchestrator_service.events import event
from orchestrator_service.review import merge_tasks
from orchestrator_service.writes import Stale, update

T = TypeVar("T")
ATTEMPTS = 5


def status_name(enum: object, value: int) -> str:
    return str(enum.Name(value))  # type: ignore[attr-defined]


async def until_settled(step: Callable[[], Awaitable[T]]) -> T:
    """Runs a read-decide-write step again while its write finds the row changed since the read."""
    for _ in range(ATTEMPTS - 1):
        try:
            return await step()
        except Stale:
            continue
    return await step()


class Operations:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.store = orchestrator.store
        self.writer = orchestrator.writer
        self._resuming: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def approve_phase(self, phase_id: str) -> phase_pb2.Phase:
        async def step() -> phase_pb2.Phase:
            phase = await self.store.get_phase(phase_id)
            if phase.status == phase_pb2.PHASE_STATUS_APPROVED:
                return phase
            if phase.status != phase_pb2.PHASE_STATUS_PENDING:
                raise NotAllowedNow(
                    f"phase {phase_id!r} is {status_name(phase_pb2.PhaseStatus, phase.status)}, not PENDING",
                    "PHASE_NOT_PENDING",
                )
            if not await self.store.projects_of(phase.initiative_id):
                raise NotAllowedNow(
                    f"phase {phase_id!r} cannot run: its initiative has no projects (attach one first)",
                    "NO_PROJECTS",
                )
            answer = await self.writer.append([], [update(phase, status=phase_pb2.PHASE_STATUS_APPROVED)])
            return answer.rows[0].phase

        return await until_settled(step)

    async def dispatch_task(self, task_id: str) -> task_pb2.Task:
        async def step() -> task_pb2.Task:
            task = await self.store.get_task(task_id)
            if task.phase_id:
                raise NotAllowedNow(
                    f"task {task_id!r} belongs to phase {task.phase_id!r}: approve the phase instead",
                    "TASK_HAS_PHASE",
                )
            if task.status != task_pb2.TASK_STATUS_PENDING:
                raise NotAllowedNow(
                    f"task {task_id!r} is {status_name(task_pb2.TaskStatus, task.status)}, not PENDING",
                    "TASK_NOT_PENDING",
                )
            if task.HasField("queue_time"):
                return task
            queued = update(task, queue_time=self.orchestrator.ctx.clock())
            answer = await self.writer.append([event("task:queued", task, reason="dispatch")], [queued])
            return answer.rows[0].task

        return await until_settled(step)

    async def retry_blocked_task(self, task_id: str) -> task_pb2.Task:
        async def step() -> task_pb2.Task:
            task = await self.store.get_task(task_id)
            if task.status != task_pb2.TASK_STATUS_BLOCKED:
                raise NotAllowedNow(
                    f"task {task_id!r} is {status_name(task_pb2.TaskStatus, task.status)}, not BLOCKED",
                    "TASK_NOT_BLOCKED",
                )
            values: dict[str, object] = {
                "status": task_pb2.TASK_STATUS_PENDING,
                "retry_count": 0,
                "reason": None,
                "next_attempt_time": None,
            }
            if not task.phase_id:
                values["queue_time"] = self.orchestrator.ctx.clock()
            if merge_tasks.blocked_by_conflict(task, await self._agents_of(task.id)):
                # Its work is done; its merge conflicted: merging again makes a merge task.
                values |= {"status": task_pb2.TASK_STATUS_COMPLETED, "reason": "its merge is tried again"}
            answer = await self.writer.append(
                [event("task:queued", task, reason="manual retry")], [update(task, **values)]
            )
            return answer.rows[0].task

        return await until_settled(step)

    async def _agents_of(self, task_id: str) -> list[agent_pb2.Agent]:
        request = agent_pb2.ListAgentsRequest(task_id=task_id)
        return await self.store.list_all(self.store.agents.ListAgents, request, "agents")

    async def stop_agent(self, agent_id: str) -> agent_pb2.Agent:
        return await self.orchestrator.agents.stop(agent_id)

    async def answer_questions(self, agent_id: str, answers: dict[str, str]) -> agent_pb2.Agent:
        async with self._resuming[agent_id]:
            agent = await self.store.get_agent(agent_id)
            if agent.status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
                raise NotAllowedNow(
                    f"agent {agent_id!r} is {status_name(agent_pb2.AgentStatus, agent.status)}, not WAITING_FOR_INPUT",
                    "AGENT_NOT_WAITING",
                )
            asked = pending_question_ids(agent)
            unknown = sorted(set(answers) - asked)
            if unknown:
                raise BadRequest("answers", f"no pending question with id {unknown[0]!r}")
            missing = sorted(asked - set(answers))
            if missing:
                raise BadRequest("answers", f"question {missing[0]!r} has no answer")
            task = await self.store.get_task(agent.task_id) if agent.task_id else None
            try:
                return await self.orchestrator.launches.resume(agent, task, answers)
            except Stale as error:
                raise NotAllowedNow(f"agent {agent_id!r} changed meanwhile; read it again", "AGENT_CHANGED") from error
            except CannotStartYet as waiting:
                raise NotAllowedNow(
                    f"agent {agent_id!r} cannot resume now: {waiting}", "PROVIDER_UNAVAILABLE"
                ) from None


def pending_question_ids(agent: agent_pb2.Agent) -> set[str]:
    try:
        questions = json.loads(agent.pending_questions or "[]")
    except ValueError:
        return set()
    return {str(question.get("id")) for question in questions if isinstance(question, dict)}
