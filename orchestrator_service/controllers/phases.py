"""The phases controller: an APPROVED phase starts once the phases it depends on are COMPLETED and
its projects are synced; a running phase follows its tasks (BLOCKED while one is, PENDING_REVIEW
once all are COMPLETED and merged).

Why a phase waits is stored on it (`reason`): a project that cannot be cloned or fetched, an
initiative without projects, phases it waits for. A phase whose projects fail retries on its own
back-off; other phases, and other initiatives, go on.
"""

from __future__ import annotations

import asyncio
import logging

from cw.store.v1 import initiative_pb2, phase_pb2, project_pb2
from orchestrator_service import dispatch
from orchestrator_service.cache.state import ACTIVE_PHASE, Change, RowKind, is_merged
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.projects import ProjectController, ProjectUnavailable
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.events import event
from orchestrator_service.git import branches
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")

NO_PROJECTS = "its initiative has no projects: add one with `cw project add` and attach it"
NO_TASKS = "it has no tasks: it goes to review once it has tasks and every one is done and merged"


# What a running phase's move reads of its tasks (`_follow_tasks`): a change of any other field of
# a task (its summary, its retry count, its agent's session) moves no phase.
FOLLOWED_TASK_FIELDS = ("status", "merge_time", "phase_id")


class PhaseController:
    def __init__(self, ctx: Context, projects: ProjectController) -> None:
        self.ctx = ctx
        self.projects = projects
        self.queue = WorkQueue("phases", self.reconcile, concurrency=4)

    def on_change(self, change: Change) -> None:
        cache = self.ctx.cache
        if change.kind == RowKind.PHASE:
            self.queue.add(change.id, reset=change.external)
            if change.after is not None and change.after.status == phase_pb2.PHASE_STATUS_COMPLETED:
                for dependent in cache.phases.values():
                    if dependent.status == phase_pb2.PHASE_STATUS_APPROVED:
                        self.queue.add(dependent.id)
        elif change.kind == RowKind.TASK and change.touches(*FOLLOWED_TASK_FIELDS):
            rows = (change.before, change.after)  # a task that moved leaves a phase too
            for phase_id in sorted({row.phase_id for row in rows if row is not None and row.phase_id}):
                self.queue.add(phase_id)
        elif change.kind in (RowKind.PROJECT, RowKind.INITIATIVE):
            initiatives = cache.initiatives_using(change.id) if change.kind == RowKind.PROJECT else [change.id]
            for initiative_id in initiatives:
                for phase in cache.phases_of(initiative_id):
                    self.queue.add(phase.id, reset=change.external)

    async def reconcile(self, phase_id: str) -> None:
        phase = self.ctx.cache.phases.get(phase_id)
        if phase is None:
            return
        try:
            if phase.status == phase_pb2.PHASE_STATUS_APPROVED:
                await self._start_if_ready(phase)
            elif phase.status in ACTIVE_PHASE:
                await self._follow_tasks(phase)
        except Stale:
            return  # the row read again is queued again

    async def _start_if_ready(self, phase: phase_pb2.Phase) -> None:
        cache = self.ctx.cache
        waiting_for = [
            dep.name
            for dep in await self.ctx.port.phase_dependencies(phase.id)
            if dep.status != phase_pb2.PHASE_STATUS_COMPLETED
        ]
        if waiting_for:
            await self._note(phase, "waits for phases: " + ", ".join(sorted(waiting_for)))
            return
        initiative = cache.initiatives.get(phase.initiative_id)
        projects = cache.projects_of(phase.initiative_id)
        if initiative is None or not projects:
            await self._note(phase, NO_PROJECTS)
            return
        await self.prepare_branches(phase, initiative, projects)
        await self.ctx.writer.append(
            [event("phase:started", phase)],
            [update(phase, status=phase_pb2.PHASE_STATUS_IN_PROGRESS, reason=None)],
        )

    async def prepare_branches(
        self, phase: phase_pb2.Phase, initiative: initiative_pb2.Initiative, projects: list[project_pb2.Project]
    ) -> None:
        """Every project synced and the phase's branch cut from the initiative's (git: the one step
        the in-process tests of this controller replace)."""
        for listed in projects:
            try:
                project = await self.projects.sync(listed, fresh=True)
            except ProjectUnavailable as error:
                await self._note(phase, str(error))
                raise
            await asyncio.to_thread(branches.ensure_phase_branch, self.ctx.git, project, initiative, phase.id)

    async def _follow_tasks(self, phase: phase_pb2.Phase) -> None:
        """Moves the phase where its tasks put it. The cache is at least as fresh as our newest
        write (the queue's gate); should it still lack something, the store refuses the move
        (NotReady, a Stale) and the missing rows' events bring the phase back here."""
        tasks = self.ctx.cache.tasks_of(phase.id)
        if not tasks:
            await self._note(phase, NO_TASKS)
            return
        merged = {task.id for task in tasks if is_merged(task)}
        target = dispatch.running_phase_status(tasks, merged)
        values: dict[str, object] = {"reason": None} if phase.reason == NO_TASKS else {}
        if target != phase.status:
            values["status"] = target
        if not values:
            return
        notes = [event("phase:pending_review", phase)] if target == phase_pb2.PHASE_STATUS_PENDING_REVIEW else []
        await self.ctx.writer.append(notes if "status" in values else [], [update(phase, **values)])

    async def _note(self, phase: phase_pb2.Phase, reason: str) -> None:
        """Why the phase does not start, for people; written only when it changes."""
        if phase.reason != reason:
            await self.ctx.writer.append([], [update(phase, reason=reason)])
