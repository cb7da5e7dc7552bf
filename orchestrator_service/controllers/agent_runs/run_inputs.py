"""What a run is started with: its prompt and environment, and which session it continues.

Each kind of run says it (the table of run kinds, runs/table.py, given to Launches as its
`RunKindInputs` by core.py). `RunInputs` reads what the execute prompt shows: the task with its
dependencies' summaries and the other tasks of its phase.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class RunStart:
    """A run about to start: its agent row (claimed) and its task."""

    agent: agent_pb2.Agent
    task: task_pb2.Task


class RunKindInputs(Protocol):
    """What each kind of run is started with (runs/table.py)."""

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        """The run's prompt and environment (CW_RUN_KIND among it)."""

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        """The session the next run of this task continues, or None for a new agent."""


class _Unwired:
    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        raise RuntimeError("no table of run kinds wired (core.py wires runs/table.py)")

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        raise RuntimeError("no table of run kinds wired (core.py wires runs/table.py)")


UNWIRED: RunKindInputs = _Unwired()


class RunInputs:
    """The reads of the execute prompt (runs/execute.py)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def execute_input(self, task: task_pb2.Task) -> RunInput:
        """The task description with its dependencies' summaries and its phase's other tasks."""
        dependencies = await self.dependencies_of(task)
        siblings, names = await self._neighbourhood(task, {dependency.id for dependency in dependencies})
        return RunInput(dispatch.build_prompt(task, dependencies, siblings, names), {})

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
