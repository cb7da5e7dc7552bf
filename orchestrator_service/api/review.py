"""A phase's review: its diff, and merging it into the initiative branch (MergePhase).

Both take refs only from the orchestrator's own records, verified against git: the phase branch
derives from the phase id, and a recorded `merge_base` must be a commit of the project that the
phase branch descends from. A forged base (git's empty tree, another repository's commit) is
refused, never diffed.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import initiative_pb2, phase_pb2, project_pb2
from orchestrator_service.api.operations import status_name
from orchestrator_service.core import Orchestrator
from orchestrator_service.errors import MergeConflict, NotAllowedNow
from orchestrator_service.events import event
from orchestrator_service.git.repo import GitError, check_branch
from orchestrator_service.git.workspace import Diff, Workspace, phase_branch, task_branch
from orchestrator_service.writes import update

DIFF_STATUSES = (
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
    phase_pb2.PHASE_STATUS_COMPLETED,
)
FILE_CHANGES = {
    "A": orchestrator_pb2.FILE_CHANGE_ADDED,
    "M": orchestrator_pb2.FILE_CHANGE_MODIFIED,
    "D": orchestrator_pb2.FILE_CHANGE_DELETED,
}
ANY_PROJECT = "*"


class Review:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.store = orchestrator.store
        self.git: Workspace = orchestrator.ctx.git
        self._merging: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def merge_phase(self, phase_id: str) -> phase_pb2.Phase:
        """Records merge_base before merging, so a retried MergePhase rebuilds the same diff."""
        async with self._merging[phase_id]:
            phase = await self.store.get_phase(phase_id)
            if phase.status != phase_pb2.PHASE_STATUS_PENDING_REVIEW:
                raise NotAllowedNow(
                    f"phase {phase_id!r} is {status_name(phase_pb2.PhaseStatus, phase.status)}, not PENDING_REVIEW",
                    "PHASE_NOT_IN_REVIEW",
                )
            initiative = await self.store.get_initiative(phase.initiative_id)
            projects = await self.store.projects_of(initiative.id)
            target = check_branch(initiative.branch)
            bases = await asyncio.to_thread(self._bases, phase, target, projects)
            if bases and format_merge_base(bases) != phase.merge_base:
                answer = await self.orchestrator.writer.append([], [update(phase, merge_base=format_merge_base(bases))])
                phase = answer.rows[0].phase
            commits: dict[str, str] = {}
            for project in projects:
                if not await asyncio.to_thread(self.git.branch_exists, project.id, phase_branch(phase.id)):
                    continue
                message = f"Merge phase {phase.name!r}"
                result = await asyncio.to_thread(self.git.merge, project.id, target, phase_branch(phase.id), message)
                if not result.merged:
                    await self._conflict(phase, project, result.conflicts, target)
                commits[project.id] = result.commit
            task_ids = [task.id for task in self.orchestrator.cache.tasks_of(phase.id)]
            done = update(phase, status=phase_pb2.PHASE_STATUS_COMPLETED, merge_commits=commits, reason=None)
            answer = await self.orchestrator.writer.append([event("phase:completed", phase)], [done])
            await self._remove_worktrees(task_ids, projects)
            return answer.rows[0].phase

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

    def _is_base_of(self, project_id: str, commit: str, head_branch: str) -> bool:
        if not commit:
            return False
        try:
            verified = self.git.commit_of(project_id, commit)
        except GitError:
            return False
        return self.git.is_ancestor(project_id, verified, f"refs/heads/{head_branch}")

    async def _conflict(
        self, phase: phase_pb2.Phase, project: project_pb2.Project, files: list[str], target: str
    ) -> None:
        await self.orchestrator.writer.append(
            [event("phase:merge_conflict", phase, project_id=project.id, files=files)]
        )
        raise MergeConflict(
            f"merging phase {phase.id!r} into {target!r} conflicts in " + ", ".join(files),
            "MERGE_CONFLICT",
            files=",".join(files),
        )

    async def _remove_worktrees(self, task_ids: list[str], projects: list[project_pb2.Project]) -> None:
        """The phase is merged: its tasks' worktrees go (the branches keep every commit; the
        agents' control files and logs stay)."""
        for task_id in task_ids:
            for project in projects:
                if await asyncio.to_thread(self.git.exists, project.id):
                    await asyncio.to_thread(self.git.release_branch, project.id, task_branch(task_id))

    async def phase_diff(self, phase_id: str) -> orchestrator_pb2.GetPhaseDiffResponse:
        phase = await self.store.get_phase(phase_id)
        if phase.status not in DIFF_STATUSES:
            raise NotAllowedNow(f"phase {phase_id!r} has not started: it has no diff yet", "PHASE_NOT_STARTED")
        initiative = await self.store.get_initiative(phase.initiative_id)
        response = orchestrator_pb2.GetPhaseDiffResponse()
        for project in await self.store.projects_of(initiative.id):
            diff = await asyncio.to_thread(self._project_diff, project, initiative, phase)
            if diff is not None:
                response.projects.append(project_diff_message(project, diff))
        return response

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


def project_diff_message(project: project_pb2.Project, diff: Diff) -> orchestrator_pb2.ProjectDiff:
    return orchestrator_pb2.ProjectDiff(
        project_id=project.id,
        project_name=project.name,
        base_commit=diff.base,
        head_commit=diff.head,
        files=[
            orchestrator_pb2.FileDiff(
                path=stat.path,
                additions=stat.additions,
                deletions=stat.deletions,
                change=FILE_CHANGES.get(stat.change, orchestrator_pb2.FILE_CHANGE_MODIFIED),
            )
            for stat in diff.files
        ],
        unified_diff=diff.unified,
    )
