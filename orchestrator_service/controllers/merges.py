"""The merges controller: a COMPLETED task's branch goes into its base branch, and that fact is
stored (`merge_time`), never kept in memory.

Git first, store second: if the orchestrator dies in between, the task is still COMPLETED and
unmerged in the store, the merge is found already done in git (`is_merged`), and only the fact is
written. Several orchestrators: one of the live ones merges the tasks of a phase (of an
initiative, for tasks outside phases: `policy.merger_of`), and one at a time merges into a branch
(the lease `merge/<phase or initiative id>`, cluster/leases.py, for the moments they disagree on
who lives; kept a moment after each merge for the phase's next task); it pulls the branches
from the shared remote first and publishes the target before the fact is written, so whoever merges next starts from it.
A conflict leaves the target as it was and gives the task a merge task, whose agent resolves it
(review/repair.py); the task's merge waits for that one's. Work already merged is never touched.
Once the work is in the initiative branch (a phase-less task's merge, or MergePhase for a
phase's tasks), the task's worktrees go (their commits are on the branch); the agents' control
files and logs stay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
from orchestrator_service import dispatch, faults
from orchestrator_service.cache.state import ACTIVE_PHASE, Change, RowKind, is_merged
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.leases import Busy
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.git import branches, shared
from orchestrator_service.git.workspace import MergeResult, task_branch
from orchestrator_service.writes import Stale

log = logging.getLogger("cw.orchestrator")

# How soon a merge into a branch another orchestrator merges into now is tried again.
BUSY_RETRY_SECONDS = 0.5
# How long the merge lease of a branch is kept after a task's merge, for the next task of the same
# phase (cluster/leases.py): tasks finishing one after another share one lease.
LINGER_SECONDS = 1.0


class Repairs(Protocol):
    """Review's repair of a task's merge (review/repair.py), given by core.py: the merge task a
    conflict makes, the wait for it, the comments a merged revision resolves."""

    def waits(self, task: task_pb2.Task) -> bool:
        """A merge task resolves this task's conflict: its merge waits for that one's."""

    async def conflict(self, task: task_pb2.Task, project: project_pb2.Project, files: list[str], target: str) -> None:
        """The merge task for the conflict, the reason on the task."""

    async def merged(self, task: task_pb2.Task, projects: Sequence[str]) -> None:
        """That the task's work is merged."""


class MergeController:
    def __init__(self, ctx: Context, repair: Repairs) -> None:
        self.ctx = ctx
        self.repair = repair
        self.queue = WorkQueue("merges", self.merge, concurrency=4)
        self._live: frozenset[str] = frozenset()

    def on_peers(self, peers: Peers) -> None:
        """Another orchestrator died or joined: the merges it now owns (or no longer does) are
        looked at again."""
        if peers.live != self._live:
            self._live = peers.live
            for task in self.ctx.cache.tasks.values():
                if self.wants_merge(task):
                    self.queue.add(task.id)

    def on_change(self, change: Change) -> None:
        if change.kind == RowKind.TASK and change.after is not None and change.after.merge_source_task_id:
            self.queue.add(change.after.merge_source_task_id)  # its merge task moved: look again
        if change.kind == RowKind.TASK and change.after is not None and self.wants_merge(change.after):
            self.queue.add(change.id, reset=change.external)
        elif change.kind == RowKind.PHASE and change.after is not None:
            for task in self.ctx.cache.tasks_of(change.id):
                if self.wants_merge(task):
                    self.queue.add(task.id)

    def wants_merge(self, task: task_pb2.Task) -> bool:
        if task.status != task_pb2.TASK_STATUS_COMPLETED or is_merged(task) or self.repair.waits(task):
            return False
        phase = self.ctx.cache.phases.get(task.phase_id)
        return not task.phase_id or (phase is not None and phase.status in ACTIVE_PHASE)

    async def merge(self, task_id: str) -> None:
        cache = self.ctx.cache
        task = cache.tasks.get(task_id)
        if task is None or not self.wants_merge(task):
            return
        target = task.phase_id or cache.initiative_id_of(task)
        if not policy.merges_here(target, self.ctx.peers):
            return  # its merger merges it; should that one die, on_peers looks again
        try:
            async with self.ctx.locks.hold(target, linger=LINGER_SECONDS):
                await self._merge(task_id)
        except Busy:
            self.queue.add(task_id, delay=BUSY_RETRY_SECONDS)

    async def _merge(self, task_id: str) -> None:
        """Under the target's merge lock: the task is looked at again as it is now."""
        cache = self.ctx.cache
        task = cache.tasks.get(task_id)
        if task is None or not self.wants_merge(task):
            return
        initiative = cache.initiatives.get(cache.initiative_id_of(task))
        merged: list[str] = []
        if initiative is not None and dispatch.merges_work(task):
            for project in cache.projects_of(initiative.id):
                result = await self._merge_project(task, initiative, project)
                if result is None:
                    continue
                if not result.merged:
                    await self._conflict(task, initiative, project, result)
                    return
                merged.append(project.id)
        faults.point("after-git-merge")
        try:
            await self.repair.merged(task, merged)
        except Stale:
            return
        if initiative is not None and not task.phase_id:
            # Its work is in the initiative branch now. A phase's tasks keep their worktrees until
            # the phase is merged: people may look at them during review.
            for project in cache.projects_of(initiative.id):
                await asyncio.to_thread(branches.release_task, self.ctx.git, project, task.id)

    async def _merge_project(
        self, task: task_pb2.Task, initiative: initiative_pb2.Initiative, project: project_pb2.Project
    ) -> MergeResult | None:
        """None when there is nothing to merge (no branch, or already in the target)."""
        git, source = self.ctx.git, task_branch(task.id)
        target = branches.base_branch(task, initiative)
        if not await asyncio.to_thread(git.exists, project.id):
            return None
        await asyncio.to_thread(shared.pull, git, project, target, source)
        if not await asyncio.to_thread(git.branch_exists, project.id, source):
            return None
        if await asyncio.to_thread(git.is_merged, project.id, source, target):
            await asyncio.to_thread(shared.publish, git, project, target)  # a merge made, never pushed
            return None
        message = f"Merge task {task.name!r} ({task.id})"
        result = await asyncio.to_thread(git.merge, project.id, target, source, message)
        if result.merged:
            await asyncio.to_thread(shared.publish, git, project, target)
        return result

    async def _conflict(
        self,
        task: task_pb2.Task,
        initiative: initiative_pb2.Initiative,
        project: project_pb2.Project,
        result: MergeResult,
    ) -> None:
        target = branches.base_branch(task, initiative)
        try:
            await self.repair.conflict(task, project, result.conflicts, target)
        except Stale:
            return
        log.warning("task %s conflicts in %s: %s; a merge task resolves it", task.id, project.name, result.conflicts)
