"""A review run: an agent reads its phase's diff and answers with comments (a review task; its
branch is not merged: dispatch.merges_work).

- Inputs: the task with its dependencies' summaries, then its phase's diff as it stands when the
  run starts (review/comments.py `review_prompt`); without a phase, an execute run's prompt. Then
  why a budget stopped its last run, and the person's replies it is given.
- Settle, in this order:
  1. an `ask` waits for another agent (runs/asking.py);
  2. a session the CLI lost starts anew (Launches.new_session), the run is not over;
  3. pure policy decides the agent's and task's values (outcomes.settle);
  4. its messages to the person and the replies it read (steps.told); a message that requires a
     response makes it wait for the reply instead (steps.waiting), nothing more is stored;
  5. a completed review's `review_comments` become comments on the phase by the agent's name
     (`reviewed`, pure: review/comments.py `from_report`);
  6. all in one transaction with what the run left in its worktree (steps.write).
- Then: the phase waits in review for the person (`cw review`), who may request changes: a
  revision task (runs/revision.py).
"""

from __future__ import annotations

import dataclasses

from cw.store.v1 import phase_pb2, review_comment_pb2, task_pb2
from cw_edge import diffs
from orchestrator_service import dispatch
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunStart
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import AgentOutcome, RunKind
from orchestrator_service.outcomes import Settlement
from orchestrator_service.review import comments
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.runs import steps


def reviewed(
    settlement: Settlement, outcome: AgentOutcome, phase_id: str, agent_name: str, files: list[comments.ProjectFiles]
) -> Settlement:
    """Pure: the settlement with the review's comments stored on the phase by the agent's name."""
    found = comments.from_report(outcome.report, phase_id, agent_name, files)
    creates = [review_comment_pb2.CreateReviewCommentRequest(review_comment=c) for c in found]
    return dataclasses.replace(settlement, creates=(*settlement.creates, *creates))


class ReviewRun:
    kind = RunKind.REVIEW
    follows = "the phase waits in review for the person, who merges it or requests changes (a revision)"

    def __init__(self, tools: steps.Tools, merger: PhaseMerger) -> None:
        self.tools = tools
        self.merger = merger

    async def inputs(self, start: RunStart) -> RunInput:
        task = start.task
        if task.phase_id:
            phase = await self._phase(task.phase_id)
            found = await self.merger.diffs(phase)
            prompt = dispatch.build_prompt(task, await self.tools.inputs.dependencies_of(task))
            run = RunInput(prompt + comments.review_prompt([(p.name, d.unified) for p, d in found]), {})
        else:
            run = await self.tools.inputs.execute_input(task)
        return await steps.told_at_start(self.tools, start, run)

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return await steps.budget_resumed(self.tools, task)

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
        if completed and task is not None and task.phase_id:
            files = await self._files(task.phase_id)
            settlement = reviewed(settlement, outcome, task.phase_id, end.agent.name, files)
        await steps.write(tools, end, settlement)
        return True

    async def _phase(self, phase_id: str) -> phase_pb2.Phase:
        ctx = self.tools.ctx
        return ctx.cache.phases.get(phase_id) or await ctx.store.get_phase(phase_id)

    async def _files(self, phase_id: str) -> list[comments.ProjectFiles]:
        phase = await self._phase(phase_id)
        return [
            comments.ProjectFiles(project.id, project.name, diffs.by_path(diff.unified))
            for project, diff in await self.merger.diffs(phase)
        ]
