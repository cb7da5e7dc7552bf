"""What the merges controller asks of review: a conflicting merge becomes a merge task (nothing is
blocked, nothing merged is undone), a task waits for the merge task resolving its conflict, and a
task's merge carries what it settles (its revision's resolved comments; for a merge task of a
phase's conflict, the phase's merge the person asked for)."""

from __future__ import annotations

from collections.abc import Sequence

from cw.store.v1 import project_pb2, review_comment_pb2, task_pb2
from orchestrator_service.cache.state import is_merged
from orchestrator_service.controllers.context import Context
from orchestrator_service.events import event
from orchestrator_service.review import merge_tasks
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.writes import update


class Repair:
    def __init__(self, ctx: Context, merger: PhaseMerger) -> None:
        self.ctx = ctx
        self.merger = merger

    def waits(self, task: task_pb2.Task) -> bool:
        """A merge task resolves this task's conflict: its merge waits for that one's."""
        return merge_tasks.resolving(self.ctx.cache.tasks.values(), task.id) is not None

    async def conflict(self, task: task_pb2.Task, project: project_pb2.Project, files: list[str], target: str) -> None:
        """One transaction: the merge task, the reason on the task, `phase:merge_conflict`."""
        conflict = merge_tasks.Conflict(project.name, files, target)
        merged = [t for t in self.ctx.cache.tasks_of(task.phase_id) if is_merged(t)] if task.phase_id else []
        notes = [event("phase:merge_conflict", task, project_id=project.id, files=files)]
        requests = [
            update(task, reason=merge_tasks.conflict_reason(conflict)),
            merge_tasks.for_task(task, conflict, merged),
        ]
        await self.ctx.writer.append(notes, requests)

    async def merged(self, task: task_pb2.Task, projects: Sequence[str]) -> None:
        """Writes that the task's work is merged, with the comments its revision resolved; a merge
        task of a phase's conflict merges the phase too, once the rest of it is merged."""
        values: dict[str, object] = {"merge_time": self.ctx.clock()}
        if merge_tasks.is_conflict_reason(task.reason):
            values["reason"] = None
        requests = [update(task, **values), *await self._resolutions(task)]
        notes = [event("task:merged", task, projects=list(projects))]
        phase = self.ctx.cache.phases.get(task.merge_source_phase_id) if task.merge_source_phase_id else None
        others = self.ctx.cache.tasks_of(phase.id) if phase is not None else []
        if phase is not None and all(
            t.id == task.id or (t.status == task_pb2.TASK_STATUS_COMPLETED and is_merged(t)) for t in others
        ):
            async with self.merger.lock(phase.initiative_id):  # the phase's own: its task's merge holds it
                await self.merger.merge(phase, requests, notes)
            return
        await self.ctx.writer.append(notes, requests)

    async def _resolutions(self, task: task_pb2.Task) -> list[review_comment_pb2.ResolveReviewCommentRequest]:
        """The revision's resolved comments that are still there and open."""
        if not task.resolved_comment_ids or not task.phase_id:
            return []
        still_open = {comment.id for comment in await self.ctx.store.open_comments(task.phase_id)}
        return [
            review_comment_pb2.ResolveReviewCommentRequest(id=comment_id)
            for comment_id in task.resolved_comment_ids
            if comment_id in still_open
        ]
