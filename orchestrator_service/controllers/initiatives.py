"""The initiatives controller: an ACTIVE initiative whose phases are all COMPLETED awaits review."""

from __future__ import annotations

from cw.store.v1 import initiative_pb2, phase_pb2
from orchestrator_service.cache.state import Change, RowKind
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.writes import Stale, update


class InitiativeController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue = WorkQueue("initiatives", self.reconcile, concurrency=2)

    def on_change(self, change: Change) -> None:
        if change.kind != RowKind.PHASE:
            return
        row = change.after or change.before
        if row is not None and row.status == phase_pb2.PHASE_STATUS_COMPLETED:
            self.queue.add(row.initiative_id)

    async def reconcile(self, initiative_id: str) -> None:
        initiative = self.ctx.cache.initiatives.get(initiative_id)
        if initiative is None or initiative.status != initiative_pb2.INITIATIVE_STATUS_ACTIVE:
            return
        if self.ctx.cache.phases_of(initiative_id):
            return  # phases still in play are cached: not done
        phases = await self.ctx.port.phases_in(initiative_id)
        if not phases or any(phase.status != phase_pb2.PHASE_STATUS_COMPLETED for phase in phases):
            return
        try:
            await self.ctx.writer.append(
                [], [update(initiative, status=initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW)]
            )
        except Stale:
            return
