"""The takeovers controller: the running agents of an orchestrator whose lease lapsed are settled
here, as crashed runs (an orphan's recovery, across machines): the agent CRASHED saying why, its task retried as a
crashed attempt (or BLOCKED after its last), `agent:taken_over` naming both orchestrators.

Every live orchestrator looks, and reads the dead one's lease once more before it writes (so a
lease read before an orchestrator came back takes nothing from it); the write is guarded by the
agent's `update_time`, so exactly one settles each run, and none at all if the owner renews its
lease and settles the run first. The machine that died loses the run and whatever it had not
pushed; its task continues elsewhere on the task branch as the shared remote holds it.
"""

from __future__ import annotations

import logging

from orchestrator_service.cache.state import Change, RowKind
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.controllers.agents import AgentController
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.outcomes import Note
from orchestrator_service.writes import Stale

log = logging.getLogger("cw.orchestrator")


class TakeoverController:
    def __init__(self, ctx: Context, agents: AgentController) -> None:
        self.ctx = ctx
        self.agents = agents
        self.queue = WorkQueue("takeovers", self.take_over, concurrency=4)

    def on_peers(self, peers: Peers) -> None:
        for agent in self.ctx.cache.running():
            if policy.abandoned(agent, peers):
                self.queue.add(agent.id)

    def on_change(self, change: Change) -> None:
        if change.kind == RowKind.AGENT and change.after is not None and policy.abandoned(change.after, self.ctx.peers):
            self.queue.add(change.id)

    async def take_over(self, agent_id: str) -> None:
        agent = self.ctx.cache.agents.get(agent_id)
        if agent is None or not policy.abandoned(agent, self.ctx.peers) or not await self._lapsed(agent.orchestrator):
            return
        note = Note("agent:taken_over", "agent", {"orchestrator": agent.orchestrator, "by": self.ctx.peers.me})
        try:
            await self.agents.settle_lost(agent, policy.takeover_reason(agent), note)
        except Stale:
            self.queue.add(agent_id)  # decide again from the row as stored now
            return
        log.warning("took over agent %s (%s) of orchestrator %s", agent.name, agent.id, agent.orchestrator)

    async def _lapsed(self, name: str) -> bool:
        """The orchestrator's lease read again, after its agent's row was: still expired. The
        leases read last may be older than the row (the orchestrator took its lease back and
        started the run since); a run it starts after this read is on a row we have not read."""
        lease = policy.lease_name(name)
        leases, read_time = await self.ctx.leases.listing(lease)
        exact = [found for found in leases if found.name == lease]
        return not policy.peers_from(self.ctx.peers.me, exact, read_time).alive(name)
