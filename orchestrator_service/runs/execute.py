"""An execute run: an agent works on a task in its worktree and commits on the task's branch.

- Inputs: the task with its dependencies' summaries and its phase's other tasks (RunInputs), then
  why a budget stopped its last run (if it did), then the person's replies it is given.
- Continuation: the session its task's budget stopped, once the budget is raised.
- Settle, in this order: an `ask` waits for another agent; a session the CLI lost starts anew;
  else pure policy decides (outcomes.settle), and the run's messages and the replies it read are
  written with it (waiting for the person when a message requires a response).
"""

from __future__ import annotations

from cw.store.v1 import task_pb2
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunStart
from orchestrator_service.controllers.agents import RunEnd
from orchestrator_service.dispatch import RunKind
from orchestrator_service.runs import steps


class ExecuteRun:
    kind = RunKind.EXECUTE
    follows = "its branch is merged into its base branch once done (controllers/merges.py)"

    def __init__(self, tools: steps.Tools) -> None:
        self.tools = tools

    async def inputs(self, start: RunStart) -> RunInput:
        return await steps.execute_inputs(self.tools, start)

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return await steps.budget_resumed(self.tools, task)

    async def settle(self, end: RunEnd) -> bool:
        tools = self.tools
        if await steps.asked_another_agent(tools, end):
            return True
        if await steps.restarted_lost_session(tools, end):
            return False
        settlement = await steps.decided(tools, end, end.outcome)
        await steps.told_and_written(tools, end, end.outcome, settlement)
        return True
