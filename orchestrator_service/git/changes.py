"""The files a task's branch changed: what an agent resumed to answer another's question is told
of its own work (conversations/controller.py)."""

from __future__ import annotations

from orchestrator_service.git.repo import git, head_ref
from orchestrator_service.git.workspace import Workspace

# Files named per project, at most (an answer prompt lists them, it does not show them).
MAX_FILES = 200


def changed_files(ws: Workspace, project_id: str, base: str, branch: str) -> list[str]:
    """The files `branch` changes against `base`: while unmerged, against their merge base; once
    merged, as the merge that brought it into `base` changed them (its first parent to it)."""
    path = ws.repo(project_id)
    unmerged = git(path, "diff", "--name-only", "--no-renames", f"{head_ref(base)}...{head_ref(branch)}", "--")
    names = [name for name in unmerged.stdout.splitlines() if name]
    if not names:
        merges = git(
            path, "rev-list", "--ancestry-path", "--merges", "--reverse", f"{head_ref(branch)}..{head_ref(base)}"
        )
        merge = next(iter(merges.stdout.split()), "")
        if merge:
            merged = git(path, "diff", "--name-only", "--no-renames", f"{merge}^1", merge, "--")
            names = [name for name in merged.stdout.splitlines() if name]
    return sorted(names)[:MAX_FILES]
