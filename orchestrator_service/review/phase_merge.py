"""A phase's branch: its diff, and its merge into the initiative branch. Used by GetPhaseDiff,
MergePhase and RequestChanges (api/review.py), and by the merges controller when a merge task that
resolved a phase's conflict is merged (the person asked for that merge already).

Refs come only from the orchestrator's own records, verified against git: the phase branch derives
from the phase id, and a recorded `merge_base` must be a commit of the project that the phase
branch descends from. A forged base (git's empty tree, another repository's commit) is refused,
never diffed. A conflict leaves the conflicting project's initiative branch as it was and gives the
phase a merge task; nothing merged is ever undone. With a shared remote, both branches are pulled
before they are read, and the initiative branch published after each merge, before the phase is
written COMPLETED. A merge holds the merge locks of the phase and of its initiative
(`Context.locks`), so only one orchestrator merges into them at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from cw.store.v1 import event_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service.cluster.leases import Busy
from orchestrator_service.controllers.context import Context
from orchestrator_service.errors import NotAllowedNow
from orchestrator_service.events import event
from orchestrator_service.git import branches, shared
from orchestrator_service.git.repo import GitError, check_branch
from orchestrator_service.git.workspace import Diff, phase_branch
from orchestrator_service.review import merge_tasks
from orchestrator_service.writes import update

ANY_PROJECT = "*"


def parse_merge_base(value: str) -> dict[str, str]:
    """`merge_base` is the commit itself for a one-project initiative, else JSON by project id."""
    if not value.startswith("{"):
        return {ANY_PROJECT: value} if value else {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return {str(key): str(commit) for key, commit in parsed.items()} if isinstance(parsed, dict) else {}


def format_merge_base(bases: dict[str, str]) -> str:
    if len(bases) == 1:
        return next(iter(bases.values()))
    return json.dumps(bases, sort_keys=True)


# How long MergePhase and RequestChanges wait for another orchestrator merging into the same branches.
LOCK_WAIT_SECONDS = 30.0


class PhaseMerger:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.git = ctx.git

    @contextlib.asynccontextmanager
    async def lock(self, *target_ids: str) -> AsyncIterator[None]:
        """The merge locks of a phase (merged or sent back: one of them at a time) and, to merge it,
        of its initiative, on any orchestrator, in that order; NotAllowedNow (MERGE_BUSY) when
        another orchestrator keeps one past LOCK_WAIT_SECONDS."""
        try:
            async with self.ctx.locks.hold(*target_ids, wait=LOCK_WAIT_SECONDS):
                yield
        except Busy as busy:
            raise NotAllowedNow(f"{busy}; try again", "MERGE_BUSY") from None

    async def _pull(self, project: project_pb2.Project, initiative: initiative_pb2.Initiative, phase_id: str) -> None:
        if await asyncio.to_thread(self.git.exists, project.id):
            await asyncio.to_thread(
                shared.pull, self.git, project, check_branch(initiative.branch), phase_branch(phase_id)
            )

    # ---- diffs ----------------------------------------------------------------------------------

    async def diffs(self, phase: phase_pb2.Phase) -> list[tuple[project_pb2.Project, Diff]]:
        """The phase's work against its base on the initiative branch, per project that has it."""
        store = self.ctx.store
        initiative = await store.get_initiative(phase.initiative_id)
        found = []
        for project in await store.projects_of(initiative.id):
            await self._pull(project, initiative, phase.id)
            diff = await asyncio.to_thread(self._project_diff, project, initiative, phase)
            if diff is not None:
                found.append((project, diff))
        return found

    def _project_diff(
        self, project: project_pb2.Project, initiative: initiative_pb2.Initiative, phase: phase_pb2.Phase
    ) -> Diff | None:
        head_branch = phase_branch(phase.id)
        if not self.git.exists(project.id) or not self.git.branch_exists(project.id, head_branch):
            return None
        head = self.git.commit_of(project.id, f"refs/heads/{head_branch}")
        if phase.status == phase_pb2.PHASE_STATUS_COMPLETED and phase.merge_base:
            recorded = parse_merge_base(phase.merge_base)
            base = recorded.get(project.id) or recorded.get(ANY_PROJECT, "")
            if not self._is_base_of(project.id, base, head_branch):
                raise NotAllowedNow(
                    f"phase {phase.id!r}: its recorded merge_base is not a commit this phase descends from",
                    "BAD_MERGE_BASE",
                )
            base = self.git.commit_of(project.id, base)
        else:
            base = self.git.merge_base(project.id, check_branch(initiative.branch), head_branch)
        return self.git.diff(project.id, base, head)

    def _is_base_of(self, project_id: str, commit: str, head_branch: str) -> bool:
        if not commit:
            return False
        try:
            verified = self.git.commit_of(project_id, commit)
        except GitError:
            return False
        return self.git.is_ancestor(project_id, verified, f"refs/heads/{head_branch}")

    def _bases(self, phase: phase_pb2.Phase, target: str, projects: list[project_pb2.Project]) -> dict[str, str]:
        recorded = parse_merge_base(phase.merge_base)
        bases = {}
        for project in projects:
            head = phase_branch(phase.id)
            if not self.git.exists(project.id) or not self.git.branch_exists(project.id, head):
                continue
            known = recorded.get(project.id) or recorded.get(ANY_PROJECT, "")
            bases[project.id] = (
                known if self._is_base_of(project.id, known, head) else self.git.merge_base(project.id, target, head)
            )
        return bases

    # ---- the merge ------------------------------------------------------------------------------

    async def merge(
        self, phase: phase_pb2.Phase, requests: Sequence[Any] = (), notes: Sequence[event_pb2.Event] = ()
    ) -> phase_pb2.Phase:
        """Merges the phase into the initiative branch and sets it COMPLETED, with `requests` and
        `notes` in the same write; on a conflict, the phase gets a merge task instead (and is
        IN_PROGRESS until its work is merged). Records merge_base first, so a retried merge
        rebuilds the same diff. The caller holds `lock(phase.id, phase.initiative_id)`."""
        store = self.ctx.store
        initiative = await store.get_initiative(phase.initiative_id)
        projects = await store.projects_of(initiative.id)
        target = check_branch(initiative.branch)
        for project in projects:
            await self._pull(project, initiative, phase.id)
        bases = await asyncio.to_thread(self._bases, phase, target, projects)
        if bases and format_merge_base(bases) != phase.merge_base:
            answer = await self.ctx.writer.append([], [update(phase, merge_base=format_merge_base(bases))])
            phase = answer.rows[0].phase
        commits: dict[str, str] = {}
        for project in projects:
            if not await asyncio.to_thread(self.git.branch_exists, project.id, phase_branch(phase.id)):
                continue
            message = f"Merge phase {phase.name!r}"
            result = await asyncio.to_thread(self.git.merge, project.id, target, phase_branch(phase.id), message)
            if not result.merged:
                conflict = merge_tasks.Conflict(project.name, result.conflicts, target)
                return await self._conflict(phase, project.id, conflict, requests=requests, notes=notes)
            await asyncio.to_thread(shared.publish, self.git, project, target)
            commits[project.id] = result.commit
        task_ids = [task.id for task in await self._tasks_of(phase)]
        done = update(phase, status=phase_pb2.PHASE_STATUS_COMPLETED, merge_commits=commits, reason=None)
        answer = await self.ctx.writer.append([event("phase:completed", phase), *notes], [done, *requests])
        await self._remove_worktrees(task_ids, projects)
        return answer.rows[0].phase

    async def _conflict(
        self,
        phase: phase_pb2.Phase,
        project_id: str,
        conflict: merge_tasks.Conflict,
        *,
        requests: Sequence[Any],
        notes: Sequence[event_pb2.Event],
    ) -> phase_pb2.Phase:
        own = await self._tasks_of(phase)
        merge = merge_tasks.for_phase(phase, conflict, own, await self._merged_phases(phase))
        back = update(phase, status=phase_pb2.PHASE_STATUS_IN_PROGRESS, reason=merge_tasks.conflict_reason(conflict))
        note = event("phase:merge_conflict", phase, project_id=project_id, files=list(conflict.files))
        answer = await self.ctx.writer.append([note, *notes], [back, merge, *requests])
        return answer.rows[0].phase

    async def _tasks_of(self, phase: phase_pb2.Phase) -> list[task_pb2.Task]:
        """The phase's tasks as stored: a merge is asked for by a person, whose call may come
        before the cache has read every task of the phase (the store refuses COMPLETED while one is
        not merged; the worktrees to remove and a merge task's context come from here)."""
        store = self.ctx.store
        return await store.list_all(store.tasks.ListTasks, task_pb2.ListTasksRequest(phase_id=phase.id), "tasks")

    async def _merged_phases(self, phase: phase_pb2.Phase) -> list[tuple[str, list[task_pb2.Task]]]:
        """The other side of a phase's conflict: the phases already merged into the initiative."""
        store = self.ctx.store
        request = phase_pb2.ListPhasesRequest(
            initiative_id=phase.initiative_id, status=phase_pb2.PHASE_STATUS_COMPLETED
        )
        merged = await store.list_all(store.phases.ListPhases, request, "phases")
        found = []
        for other in merged[-merge_tasks.MAX_SIDE_LINES :]:
            tasks = task_pb2.ListTasksRequest(phase_id=other.id)
            found.append((other.name, await store.list_all(store.tasks.ListTasks, tasks, "tasks")))
        return found

    async def _remove_worktrees(self, task_ids: list[str], projects: list[project_pb2.Project]) -> None:
        """The phase is merged: its tasks' worktrees go (the branches keep every commit; the
        agents' control files and logs stay)."""
        for task_id in task_ids:
            for project in projects:
                await asyncio.to_thread(branches.release_task, self.git, project, task_id)
