"""Diffs as the API shows them (ProjectDiff), for a phase and for an initiative."""

from __future__ import annotations

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import project_pb2
from orchestrator_service.git.workspace import Diff

FILE_CHANGES = {
    "A": orchestrator_pb2.FILE_CHANGE_ADDED,
    "M": orchestrator_pb2.FILE_CHANGE_MODIFIED,
    "D": orchestrator_pb2.FILE_CHANGE_DELETED,
}


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
