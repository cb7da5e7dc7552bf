"""The projects controller: cw's own clone of each project, cloned on first use and fetched when a
phase starts. A project that cannot be synced has the reason stored (`sync_error`, with a
`project:sync_failed` event), retries on its own back-off, and clears the error (`project:synced`)
as soon as a sync works, for example after `UpdateProject` with a good url: no restart needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from cw.store.v1 import project_pb2
from orchestrator_service.cache.state import Change, RowKind
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.events import event
from orchestrator_service.git import shared
from orchestrator_service.git.repo import GitError
from orchestrator_service.paths import UnsafeName, redact, safe_component
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")

# A fetch this recent is fresh enough for a phase that starts now.
FRESH_SECONDS = 10.0


class ProjectUnavailable(Exception):
    """The project cannot be cloned or fetched now; the message says why, for people."""


class ProjectController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue = WorkQueue("projects", self.retry, concurrency=2)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._synced_at: dict[str, float] = {}

    def on_change(self, change: Change) -> None:
        if change.kind == RowKind.PROJECT and change.external and change.after is not None and change.after.sync_error:
            self.queue.add(change.id, reset=True)

    async def retry(self, project_id: str) -> None:
        """A failing project is tried again on its own back-off until it syncs."""
        project = self.ctx.cache.projects.get(project_id)
        if project is not None and project.sync_error:
            await self.sync(project, fresh=True)

    async def sync(self, project: project_pb2.Project, fresh: bool = False) -> project_pb2.Project:
        """Clones (or, when `fresh`, fetches) the project; raises ProjectUnavailable and records the
        error when it cannot. Returns the project as it is now: with its shared remote, once this
        orchestrator (given `--shared-remotes`) gave it one."""
        project = await self._shared(project)
        await self._sync(project, fresh)
        return self.ctx.cache.projects.get(project.id, project)

    async def _shared(self, project: project_pb2.Project) -> project_pb2.Project:
        """A project without a shared remote gets `<--shared-remotes>/<project id>.git`, stored, so
        that every orchestrator uses the same one (a person may have set another already)."""
        base = self.ctx.settings.shared_remotes
        current = self.ctx.cache.projects.get(project.id, project)
        if not base or current.shared_remote:
            return current
        try:
            remote = shared.remote_for(base, project.id)
            await asyncio.to_thread(shared.create_bare, remote)
            answer = await self.ctx.writer.append([], [update(current, shared_remote=remote)])
        except Stale:
            return self.ctx.cache.projects.get(project.id, project)
        stored: project_pb2.Project = answer.rows[0].project
        return stored

    async def _sync(self, project: project_pb2.Project, fresh: bool) -> None:
        async with self._locks[project.id]:
            recent = time.monotonic() - self._synced_at.get(project.id, -FRESH_SECONDS) < FRESH_SECONDS
            if await asyncio.to_thread(self.ctx.git.exists, project.id) and (recent or not fresh):
                return
            try:
                safe_component(project.name, "project name")
                await asyncio.to_thread(self.ctx.git.sync, project.id, project.url)
            except (GitError, UnsafeName) as error:
                message = redact(str(error), self.ctx.root)
                await self._record(project, message)
                self.queue.add(project.id)
                raise ProjectUnavailable(f"project {project.name!r} cannot be synced: {message}") from error
            self._synced_at[project.id] = time.monotonic()
            await self._record(project, "")

    async def _record(self, project: project_pb2.Project, error: str) -> None:
        """A failure when it is new; a success as the fetch time, announced when it ends a failure."""
        current = self.ctx.cache.projects.get(project.id, project)
        notes = []
        if error:
            if current.sync_error == error:
                return
            values: dict[str, object] = {"sync_error": error, "sync_error_time": self.ctx.clock()}
            notes.append(event("project:sync_failed", current, error=error))
        else:
            values = {"last_fetch_time": self.ctx.clock()}
            if current.sync_error:
                values |= {"sync_error": None, "sync_error_time": None}
                notes.append(event("project:synced", current))
        try:
            await self.ctx.writer.append(notes, [update(current, **values)])
        except Stale:
            return
        if error:
            log.warning("project %s (%s) cannot be synced: %s", current.name, current.id, error)
