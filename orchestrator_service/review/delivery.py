"""Delivery (GetInitiativeDiff, DeliverInitiative): the initiative branch shown against each
project's default branch, then pushed into each project's own repository as a branch of the same
name, and the initiative COMPLETED.

Delivered only once every phase is merged (COMPLETED): a push of half the work would look like all
of it. Each project is fetched first, so the diff's base and the push both see the repository as
it is now. The git side (git/delivery.py) never touches the branch checked out there and never
forces a push.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf import json_format

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import event_pb2, initiative_pb2, phase_pb2, project_pb2
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.projects import ProjectController, ProjectUnavailable
from orchestrator_service.errors import NotAllowedNow
from orchestrator_service.events import event
from orchestrator_service.git import delivery, shared
from orchestrator_service.git.repo import check_branch
from orchestrator_service.paths import redact
from orchestrator_service.review.views import project_diff_message
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")
DELIVERABLE = (
    initiative_pb2.INITIATIVE_STATUS_ACTIVE,
    initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW,
    initiative_pb2.INITIATIVE_STATUS_COMPLETED,
)
ATTEMPTS = 5
DELIVERED = "initiative:delivered"


class Delivery:
    def __init__(self, ctx: Context, projects: ProjectController) -> None:
        self.ctx = ctx
        self.projects = projects
        self._lock = asyncio.Lock()

    async def diff(self, initiative_id: str) -> orchestrator_pb2.GetInitiativeDiffResponse:
        initiative = await self.ctx.store.get_initiative(initiative_id)
        branch = check_branch(initiative.branch)
        response = orchestrator_pb2.GetInitiativeDiffResponse()
        for project in await self.ctx.store.projects_of(initiative.id):
            await self._fetch(project, branch)
            found = await asyncio.to_thread(
                delivery.initiative_diff, self.ctx.git, project.id, branch, project.default_branch or "main"
            )
            if found is not None:
                response.projects.append(project_diff_message(project, found))
        return response

    async def deliver(self, initiative_id: str) -> initiative_pb2.Initiative:
        async with self._lock:
            initiative = await self.ctx.store.get_initiative(initiative_id)
            await self._check_done(initiative)
            branch = check_branch(initiative.branch)
            pushed: dict[str, str] = {}
            for project in await self.ctx.store.projects_of(initiative.id):
                await self._fetch(project, branch)
                if not await asyncio.to_thread(self.ctx.git.branch_exists, project.id, branch):
                    continue
                try:
                    done = await asyncio.to_thread(delivery.push_branch, self.ctx.git, project.id, branch)
                except delivery.DeliveryRefused as refused:
                    raise NotAllowedNow(
                        f"project {project.name}: {redact(str(refused), self.ctx.root)}", refused.reason
                    ) from None
                pushed[project.id] = done.commit
            return await self._completed(initiative_id, branch, pushed)

    async def _fetch(self, project: project_pb2.Project, branch: str) -> None:
        """The project's repository fetched, and the initiative branch as the shared remote has it."""
        try:
            current = await self.projects.sync(project, fresh=True)
            await asyncio.to_thread(shared.pull, self.ctx.git, current, branch)
        except ProjectUnavailable as error:
            raise NotAllowedNow(str(error), "PROJECT_UNAVAILABLE") from None

    async def _check_done(self, initiative: initiative_pb2.Initiative) -> None:
        if initiative.status not in DELIVERABLE:
            raise NotAllowedNow(
                f"initiative {initiative.id!r} is archived: bring it back before delivering it", "INITIATIVE_ARCHIVED"
            )
        store = self.ctx.store
        request = phase_pb2.ListPhasesRequest(initiative_id=initiative.id)
        phases = await store.list_all(store.phases.ListPhases, request, "phases")
        open_phases = [p.name for p in phases if p.status != phase_pb2.PHASE_STATUS_COMPLETED]
        if open_phases:
            raise NotAllowedNow(
                f"initiative {initiative.id!r} has phases not merged yet: {', '.join(open_phases[:10])}; merge "
                "(or delete) them first",
                "INITIATIVE_NOT_DONE",
            )

    async def _completed(self, initiative_id: str, branch: str, pushed: dict[str, str]) -> initiative_pb2.Initiative:
        for _ in range(ATTEMPTS):
            initiative = await self.ctx.store.get_initiative(initiative_id)
            if repeats_delivery(initiative, await self._last_delivered(initiative_id), branch, pushed):
                log.info("initiative %s was already delivered as %s: nothing new recorded", initiative_id, branch)
                return initiative
            note = event(DELIVERED, initiative, branch=branch, projects=sorted(pushed), commits=dict(pushed))
            done = update(initiative, status=initiative_pb2.INITIATIVE_STATUS_COMPLETED)
            try:
                answer = await self.ctx.writer.append([note], [done])
            except Stale:
                continue
            log.info("initiative %s delivered as %s to %d projects", initiative_id, branch, len(pushed))
            return answer.rows[0].initiative
        raise NotAllowedNow(f"initiative {initiative_id!r} kept changing; deliver it again", "INITIATIVE_CHANGED")

    async def _last_delivered(self, initiative_id: str) -> event_pb2.Event | None:
        """The initiative's latest `initiative:delivered` (a few per initiative at most)."""
        store, after, last = self.ctx.store, 0, None
        while True:
            request = event_pb2.ListEventsRequest(
                after_sequence=after, types=[DELIVERED], initiative_id=initiative_id, page_size=100
            )
            page = await store.call(store.events.ListEvents, request)
            if not page.events:
                return last
            last, after = page.events[-1], page.last_sequence


def repeats_delivery(
    initiative: initiative_pb2.Initiative, last: event_pb2.Event | None, branch: str, pushed: dict[str, str]
) -> bool:
    """A delivery already recorded: the initiative is COMPLETED and its latest delivery pushed the
    same branch at the same commits. A retry after any kill (the push done, the answer lost) then
    records nothing more; a delivery that brings new commits is recorded again."""
    if initiative.status != initiative_pb2.INITIATIVE_STATUS_COMPLETED or last is None:
        return False
    details = json_format.MessageToDict(last.details)
    return details.get("branch") == branch and details.get("commits") == pushed
