"""A phase's review: its diff, merging it into the initiative branch (MergePhase), sending it back
with the open review comments (RequestChanges); and an initiative's delivery.

The git work lives in review/phase_merge.py and review/delivery.py; these handlers check the
phase's state and hold the phase's lock, so a merge and a request for changes never cross.
"""

from __future__ import annotations

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import initiative_pb2, phase_pb2, task_pb2
from cw_edge import diffs
from orchestrator_service.api.operations import status_name
from orchestrator_service.core import Orchestrator
from orchestrator_service.errors import NotAllowedNow
from orchestrator_service.events import event
from orchestrator_service.review import comments
from orchestrator_service.review.views import project_diff_message
from orchestrator_service.writes import update

DIFF_STATUSES = (
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
    phase_pb2.PHASE_STATUS_COMPLETED,
)
REVISION_NAME_CHARS = 200


class Review:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.store = orchestrator.store
        self.merger = orchestrator.merger
        self.delivery = orchestrator.delivery

    async def _in_review(self, phase_id: str) -> phase_pb2.Phase:
        phase = await self.store.get_phase(phase_id)
        if phase.status != phase_pb2.PHASE_STATUS_PENDING_REVIEW:
            raise NotAllowedNow(
                f"phase {phase_id!r} is {status_name(phase_pb2.PhaseStatus, phase.status)}, not PENDING_REVIEW",
                "PHASE_NOT_IN_REVIEW",
            )
        return phase

    async def merge_phase(self, phase_id: str) -> phase_pb2.Phase:
        """COMPLETED, or on a conflict IN_PROGRESS with a merge task that resolves it."""
        phase = await self._in_review(phase_id)
        async with self.merger.lock(phase.id, phase.initiative_id):
            return await self.merger.merge(await self._in_review(phase_id))

    async def request_changes(self, phase_id: str) -> phase_pb2.Phase:
        """One transaction: the revision task with every open comment, the phase IN_PROGRESS."""
        async with self.merger.lock((await self._in_review(phase_id)).id):
            phase = await self._in_review(phase_id)
            found = await self.store.open_comments(phase.id)
            if not found:
                raise NotAllowedNow(
                    f"phase {phase_id!r} has no open review comment: comment first (cw review comment)",
                    "NO_OPEN_COMMENTS",
                )
            files = [
                comments.ProjectFiles(project.id, project.name, diffs.by_path(diff.unified))
                for project, diff in await self.merger.diffs(phase)
            ]
            revision = task_pb2.Task(
                phase_id=phase.id,
                initiative_id=phase.initiative_id,
                name=f"Address review of {phase.name}"[:REVISION_NAME_CHARS],
                description=comments.revision_prompt(phase.name, found, files),
                category=task_pb2.TASK_CATEGORY_EXECUTE,
                priority=task_pb2.TASK_PRIORITY_HIGH,
                review_comment_ids=[comment.id for comment in found],
            )
            note = event("phase:changes_requested", phase, comments=[comment.id for comment in found])
            back = update(phase, status=phase_pb2.PHASE_STATUS_IN_PROGRESS, reason=None)
            answer = await self.orchestrator.writer.append([note], [back, task_pb2.CreateTaskRequest(task=revision)])
            return answer.rows[0].phase

    async def phase_diff(self, phase_id: str) -> orchestrator_pb2.GetPhaseDiffResponse:
        phase = await self.store.get_phase(phase_id)
        if phase.status not in DIFF_STATUSES:
            raise NotAllowedNow(f"phase {phase_id!r} has not started: it has no diff yet", "PHASE_NOT_STARTED")
        found = await self.merger.diffs(phase)
        return orchestrator_pb2.GetPhaseDiffResponse(
            projects=[project_diff_message(project, diff) for project, diff in found]
        )

    async def initiative_diff(self, initiative_id: str) -> orchestrator_pb2.GetInitiativeDiffResponse:
        return await self.delivery.diff(initiative_id)

    async def deliver(self, initiative_id: str) -> initiative_pb2.Initiative:
        return await self.delivery.deliver(initiative_id)
