"""What a run is started with: its prompt and environment, and which session it continues.

The execute prompt (the task with its dependencies' summaries) unless a planner of the task's
kind says otherwise (planning: orchestrator_service/planning/; review: review/reports.py), then
whatever each prompt hook adds (the person's replies: conversations/person.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.cache import known
from orchestrator_service.controllers.context import Context


@dataclass(frozen=True)
class RunInput:
    """What a run is started with beyond its task: the prompt, and extra environment variables."""

    prompt: str
    environment: dict[str, str]


@dataclass(frozen=True)
class Continuation:
    """An agent whose CLI session the next run of a task continues, and what it is told
    (CW_ANSWERS_FILE), as after questions."""

    agent: agent_pb2.Agent
    answers: dict[str, str]


class RunPlanner(Protocol):
    """Runs whose task says how to start them (planning: orchestrator_service/planning/)."""

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput | None:
        """The prompt of a run of this task, or None for the execute prompt."""

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        """The session the next run of this task continues, or None for a new agent."""


class RunInputs:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.planners: list[RunPlanner] = []
        # More for every run's prompt, given its agent and task (the person's replies).
        self.prompt_hooks: list[Callable[[agent_pb2.Agent, task_pb2.Task], Awaitable[str]]] = []

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        """The task's prompt: a planner's, or the task description with its dependencies' summaries;
        then what each prompt hook adds (the person's replies: conversations/person.py). Every run
        says its kind in CW_RUN_KIND."""
        run = await self._planned_input(agent, task)
        added = [await hook(agent, task) for hook in self.prompt_hooks]
        environment = {"CW_RUN_KIND": dispatch.run_kind(task).value, **run.environment}
        return RunInput(run.prompt + "".join(added), environment)

    async def _planned_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        for planner in self.planners:
            planned = await planner.run_input(agent, task)
            if planned is not None:
                return planned
        dependencies = await self.dependencies_of(task)
        siblings, names = await self._neighbourhood(task, {dependency.id for dependency in dependencies})
        return RunInput(dispatch.build_prompt(task, dependencies, siblings, names), {})

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        for planner in self.planners:
            continued = await planner.continuation(task)
            if continued is not None:
                return continued
        return None

    async def _neighbourhood(
        self, task: task_pb2.Task, dependencies: set[str]
    ) -> tuple[list[dispatch.Neighbour], dict[str, str]]:
        """The other tasks of the task's phase, and the name of the latest agent of each task of
        the initiative: what the cache keeps of them beyond live rows, or read (cache/known.py)."""
        store, cache = self.ctx.store, self.ctx.cache
        names = await known.agent_names(store, cache, task.initiative_id)
        if not task.phase_id:
            return [], names
        listed = await known.phase_tasks(store, cache, task.phase_id)
        siblings = [
            dispatch.Neighbour(other, names.get(other.id, ""))
            for other in listed
            if other.id != task.id and other.id not in dependencies and other.category == task.category
        ]
        return siblings, names

    async def dependencies_of(self, task: task_pb2.Task) -> list[task_pb2.Task]:
        """The tasks this one depends on, for their summaries: from the cache, or read."""
        found = []
        for dependency_id in sorted(self.ctx.cache.depends_on.get(task.id, set())):
            dependency = self.ctx.cache.tasks.get(dependency_id)
            if dependency is None:
                dependency = await self.ctx.store.get_task(dependency_id)
            found.append(dependency)
        return found
