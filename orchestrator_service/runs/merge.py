"""A merge run: an agent resolves a conflict between a task's (or a phase's) branch and its base
(review/merge_tasks.py makes the task).

- Inputs: as an execute run's (the task's description says what conflicts).
- Settle, in this order: an `ask` waits for another agent; a session the CLI lost starts anew; a
  "done" that left conflict markers in the files its branch changes is a failed attempt, whatever
  it said (steps.conflict_markers); then pure policy, its messages and replies, the write.
"""

from __future__ import annotations

from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import RunKind
from orchestrator_service.runs import steps
from orchestrator_service.runs.execute import ExecuteRun


class MergeRun(ExecuteRun):
    """Started as an execute run is (`ExecuteRun.inputs`, `continuation`); settled its own way."""

    kind = RunKind.MERGE
    follows = "its branch is merged like an execute run's, then the task it resolves is merged again"

    async def settle(self, end: RunEnd) -> bool:
        tools = self.tools
        if await steps.asked_another_agent(tools, end):
            return True
        if await steps.restarted_lost_session(tools, end):
            return False
        outcome = await steps.conflict_markers(tools.ctx, end.task, end.outcome)
        settlement = await steps.decided(tools, end, outcome)
        await steps.told_and_written(tools, end, outcome, settlement)
        return True
