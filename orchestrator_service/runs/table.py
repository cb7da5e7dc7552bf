"""The table of run kinds: which class starts and settles each kind of run (dispatch.RunKind).

`build` is the one place the table is made (core.py calls it); `dispatch.run_kind(task)` picks a
task's entry, and a run that answers another agent (its agent names a conversation) is the
ANSWER entry's. CW_RUN_KIND is the entry's kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunStart
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import RunKind
from orchestrator_service.planning.runs import Planning
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.runs.answer import AnswerRun
from orchestrator_service.runs.execute import ExecuteRun
from orchestrator_service.runs.kind import TaskRun
from orchestrator_service.runs.merge import MergeRun
from orchestrator_service.runs.planning import PLANNING_KINDS, PlanningRun
from orchestrator_service.runs.review import ReviewRun
from orchestrator_service.runs.revision import RevisionRun
from orchestrator_service.runs.steps import Tools


@dataclass(frozen=True)
class RunTable:
    """Launches' RunKindInputs and the agents controller's RunSettler."""

    kinds: Mapping[RunKind, TaskRun]
    answer: AnswerRun

    def of(self, task: task_pb2.Task | None) -> TaskRun:
        """The task's kind of run (a run whose task is gone is settled as an execute run)."""
        return self.kinds[dispatch.run_kind(task) if task is not None else RunKind.EXECUTE]

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        """The kind's prompt and environment, with CW_RUN_KIND added here so no kind can forget it."""
        entry = self.of(task)
        run = await entry.inputs(RunStart(agent, task))
        return RunInput(run.prompt, {"CW_RUN_KIND": entry.kind.value, **run.environment})

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return await self.of(task).continuation(task)

    async def settle(self, end: RunEnd) -> bool:
        """A run that answered another agent is settled as an answer whatever its task's kind: its
        task is not its to change."""
        if end.agent.conversation_id:
            return await self.answer.settle(end)
        return await self.of(end.task).settle(end)


def build(tools: Tools, planning: Planning, merger: PhaseMerger) -> RunTable:
    """Every kind of run, each with its class (one file each in runs/)."""
    kinds: dict[RunKind, TaskRun] = {
        RunKind.EXECUTE: ExecuteRun(tools),
        RunKind.MERGE: MergeRun(tools),
        RunKind.REVIEW: ReviewRun(tools, merger),
        RunKind.REVISION: RevisionRun(tools),
        **{kind: PlanningRun(tools, planning, kind) for kind in PLANNING_KINDS},
    }
    return RunTable(kinds, AnswerRun(tools.ctx))
