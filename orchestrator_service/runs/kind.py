"""What every kind of run of a task offers the table (runs/table.py)."""

from __future__ import annotations

from typing import Protocol

from cw.store.v1 import task_pb2
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunStart
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import RunKind


class TaskRun(Protocol):
    """One kind of run of a task: how it starts, how it ends, and (`follows`, for people) what
    comes after it."""

    kind: RunKind
    follows: str

    async def inputs(self, start: RunStart) -> RunInput:
        """The run's prompt and environment (the table adds CW_RUN_KIND)."""

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        """The CLI session the next run of the task continues, or None for a new agent."""

    async def settle(self, end: RunEnd) -> bool:
        """The run's settlement written; False when it is not over (a new session took it on)."""
