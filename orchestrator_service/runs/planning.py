"""A planning run (discuss, plan, detail, refine: the task's category), one class for the four,
parametrised by its kind. The planning package does the work (planning/runs.py).

- Inputs: what the run is shown (the initiative's pages and phases, its target, the tasks of the
  phase concerned), kept where the agent cannot write, and the prompt of its mode; CW_TARGET_ID
  when it has a target. Then why a budget stopped its last run, and the person's replies.
- Continuation: a chat's next turn (a refine task answering a chat) continues the session of the
  agent that answered before; else the session its task's budget stopped.
- Settle, in this order: an `ask` waits for another agent; a session the CLI lost starts anew;
  pure policy; a "done" report's proposals validated and stored PENDING (a bad report is a failed
  attempt), a chat turn's reply stored with it (planning/chat.py); then its messages and the
  replies it read (a planning run never waits for replies), and the write.
- Then: the proposals wait for the person's approval (`cw propose`); nothing is merged.
"""

from __future__ import annotations

from cw.store.v1 import task_pb2
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunStart
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import RunKind
from orchestrator_service.outcomes import Settlement
from orchestrator_service.planning.runs import Planning
from orchestrator_service.runs import steps

PLANNING_KINDS = (RunKind.DISCUSS, RunKind.PLAN, RunKind.DETAIL, RunKind.REFINE)


class PlanningRun:
    follows = "its proposals wait for the person's approval; the task is marked merged without git"

    def __init__(self, tools: steps.Tools, planning: Planning, kind: RunKind) -> None:
        self.tools = tools
        self.planning = planning
        self.kind = kind

    async def inputs(self, start: RunStart) -> RunInput:
        return await steps.told_at_start(self.tools, start, await self.planning.run_input(start.agent, start.task))

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return await self.planning.continuation(task) or await steps.budget_resumed(self.tools, task)

    async def settle(self, end: RunEnd) -> bool:
        tools, outcome = self.tools, end.outcome
        if await steps.asked_another_agent(tools, end):
            return True
        if await steps.restarted_lost_session(tools, end):
            return False
        settlement = await steps.decided(tools, end, outcome)

        async def write(planned: Settlement) -> None:
            await steps.told_and_written(tools, end, outcome, planned)

        await self.planning.settle(end.agent, end.task, outcome, settlement, write)
        return True
