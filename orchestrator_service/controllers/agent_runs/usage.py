"""Usage and budgets (README, "Usage and budgets"): each agent's usage stored as it runs, and the budgets that stop
a task's run or keep an initiative's runs from starting.

The agents controller calls `record` for each of its running agents as often as it ships their
output (about once a second), and once more when a run ends: the agent's whole output file is read
once from its start (after a restart too), then only what it gained, so its usage in the store is
the sum of all its runs, a turn behind at most. A task's usage is the sum of its agents' (every
attempt and resume), an initiative's the sum of its tasks': the store sums them (SumAgentUsage).

Decisions are pure (`spent`); budgets are checked against the store's sums after each write.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cw.store.v1 import agent_pb2, initiative_pb2, task_pb2
from orchestrator_service.agents import usage
from orchestrator_service.agents.shim import IDENTITY_FILE
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation
from orchestrator_service.controllers.context import Context
from orchestrator_service.writes import update

log = logging.getLogger("cw.orchestrator")

# The key an agent stopped by its task's budget carries in its `result` (with the reason).
BUDGET_KEY = "budget"


@dataclass(frozen=True)
class Spent:
    """A budget passed: what was used of it, for people."""

    reason: str


def spent(used: agent_pb2.Usage, budget_tokens: int | None, budget_usd: float | None, whose: str) -> Spent | None:
    """Pure: the budget `used` has passed (more than it allows), or None. Tokens count input,
    output and cache writes."""
    tokens = usage.budget_tokens(used)
    if budget_tokens is not None and tokens > budget_tokens:
        return Spent(f"{whose} budget is spent: {tokens:,} tokens used of {budget_tokens:,}")
    if budget_usd is not None and used.cost_usd > budget_usd:
        return Spent(f"{whose} budget is spent: ${used.cost_usd:,.4f} used of ${budget_usd:,.4f}")
    return None


def budget_of(row: task_pb2.Task | initiative_pb2.Initiative) -> tuple[int | None, float | None]:
    tokens = row.budget_tokens if row.HasField("budget_tokens") else None
    usd = row.budget_usd if row.HasField("budget_usd") else None
    return tokens, usd


def has_budget(row: task_pb2.Task | initiative_pb2.Initiative) -> bool:
    return budget_of(row) != (None, None)


def run_starts(files: AgentFiles) -> list[int]:
    """Where each run of the agent began in its output file, as its shims recorded it."""
    starts = []
    for path in files.control.glob(f"{Path(IDENTITY_FILE).stem}*{Path(IDENTITY_FILE).suffix}"):
        try:
            offset = json.loads(path.read_text()).get("output_offset")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(offset, int) and offset >= 0:
            starts.append(offset)
    return starts


BUDGET_NOTE = (
    "\n\n## Your budget\n\nYour previous run was stopped: {reason}. The budget has been raised. Go on "
    "from where you stopped; what you committed is on your branch.\n"
)


def budget_reason(agent: agent_pb2.Agent) -> str | None:
    """Why the agent's last run was stopped by its task's budget (its `result`), or None."""
    try:
        result = json.loads(agent.result or "{}")
    except ValueError:
        return None
    reason = result.get(BUDGET_KEY) if isinstance(result, dict) else None
    return reason if isinstance(reason, str) else None


def stopped_by_budget(agent: agent_pb2.Agent) -> bool:
    return agent.outcome == agent_pb2.AGENT_OUTCOME_STOPPED and budget_reason(agent) is not None


class UsageMeter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._readers: dict[str, usage.UsageReader] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def record(self, agent: agent_pb2.Agent, final: bool = False) -> agent_pb2.Agent:
        """Stores what the agent's output says it used so far, when that changed; the agent's row
        as it is then. `final`: the run ended, its reader is let go (the next run reads again)."""
        lock = self._locks.setdefault(agent.id, asyncio.Lock())
        async with lock:
            reader = self._readers.setdefault(agent.id, usage.UsageReader())
            files = AgentFiles.of(self.ctx.root, agent.id)
            prices = self.ctx.settings.prices
            counts = await asyncio.to_thread(lambda: reader.read(files.output, run_starts(files), prices))
            if final:
                self.forget(agent.id)
            current = self.ctx.cache.agents.get(agent.id) or agent
            measured = counts.message()
            if measured == current.usage:
                return current
            request = update(current, usage=measured)
            request.ClearField("expected_update_time")  # a fact read from the output: always right
            answer = await self.ctx.writer.append([], [request])
            recorded: agent_pb2.Agent = answer.rows[0].agent
            return recorded

    def forget(self, agent_id: str) -> None:
        self._readers.pop(agent_id, None)
        self._locks.pop(agent_id, None)

    async def used(self, task_id: str = "", initiative_id: str = "") -> agent_pb2.Usage:
        """The usage of every agent of the task or initiative, summed by the store."""
        store = self.ctx.store
        request = agent_pb2.SumAgentUsageRequest(task_id=task_id, initiative_id=initiative_id)
        answer = await store.call(store.agents.SumAgentUsage, request)
        return answer.sums[0].usage if answer.sums else agent_pb2.Usage()

    async def task_spent(self, task: task_pb2.Task) -> Spent | None:
        if not has_budget(task):
            return None
        return spent(await self.used(task_id=task.id), *budget_of(task), "the task's")

    async def initiative_spent(self, initiative: initiative_pb2.Initiative) -> Spent | None:
        if not has_budget(initiative):
            return None
        return spent(await self.used(initiative_id=initiative.id), *budget_of(initiative), "the initiative's")


async def budget_continuation(ctx: Context, task: task_pb2.Task) -> Continuation | None:
    """A task whose last run its budget stopped goes on in that agent's CLI session once retried,
    its work kept, instead of starting a new one (every kind of run: runs/steps.py); the resumed
    run is told why it was stopped (BUDGET_NOTE)."""
    if not has_budget(task):
        return None  # only a budget stops a run this way
    store = ctx.store
    request = agent_pb2.ListAgentsRequest(task_id=task.id)
    agents = await store.list_all(store.agents.ListAgents, request, "agents")
    latest = max(agents, key=lambda agent: (agent.create_time.ToNanoseconds(), agent.id), default=None)
    if latest is None or not latest.session_id or not stopped_by_budget(latest):
        return None
    return Continuation(latest, {})
