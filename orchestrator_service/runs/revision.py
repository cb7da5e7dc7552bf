"""A revision run: an agent addresses the review comments a person's RequestChanges gave its task
(`review_comment_ids`; api/review.py makes the task).

- Inputs: as an execute run's (the task's description holds the comments).
- Settle, in this order: an `ask` waits for another agent; a session the CLI lost starts anew;
  pure policy; its messages and replies (or waiting for the person's); a completed run's
  `resolved_comments` among those it was given stored on its task (`resolved`, pure); the write.
- Then: its branch is merged like an execute run's, and the comments it resolved are resolved
  once its work is merged (review/repair.py).
"""

from __future__ import annotations

import dataclasses

from cw.store.v1 import task_pb2
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import AgentOutcome, RunKind
from orchestrator_service.outcomes import Settlement
from orchestrator_service.review import comments
from orchestrator_service.runs import steps
from orchestrator_service.runs.execute import ExecuteRun


def resolved(settlement: Settlement, outcome: AgentOutcome, task: task_pb2.Task) -> Settlement:
    """Pure: the task's values with the comments the run resolved among those it was given."""
    values = {**(settlement.task or {}), "resolved_comment_ids": comments.resolved_by(task, outcome.report)}
    return dataclasses.replace(settlement, task=values)


class RevisionRun(ExecuteRun):
    """Started as an execute run is (`ExecuteRun.inputs`, `continuation`); settled its own way."""

    kind = RunKind.REVISION
    follows = "its branch is merged; the comments it resolved are resolved then (review/repair.py)"

    async def settle(self, end: RunEnd) -> bool:
        tools, outcome, task = self.tools, end.outcome, end.task
        if await steps.asked_another_agent(tools, end):
            return True
        if await steps.restarted_lost_session(tools, end):
            return False
        settlement = await steps.decided(tools, end, outcome)
        said = await steps.told(tools, end, outcome)
        if steps.waits(task, outcome, said):
            await steps.write(tools, end, await steps.waiting(tools, end, outcome, said, settlement))
            return True
        completed = steps.completes(task, outcome, settlement)
        settlement = steps.with_told(settlement, said)
        if completed and task is not None and task.review_comment_ids:
            settlement = resolved(settlement, outcome, task)
        await steps.write(tools, end, settlement)
        return True
