"""Which branch each piece of work lives on, and getting those branches ready in every project.

Fetching is the projects controller's job (it happens when a phase starts, not per task); these
functions work on the clone as it is.
"""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
from orchestrator_service.git import conflicts
from orchestrator_service.git.repo import check_branch
from orchestrator_service.git.workspace import Workspace, phase_branch, task_branch
from orchestrator_service.paths import safe_component


def base_branch(task: task_pb2.Task, initiative: initiative_pb2.Initiative) -> str:
    """A task branches from (and merges back into) its phase branch, or the initiative branch."""
    return phase_branch(task.phase_id) if task.phase_id else check_branch(initiative.branch)


def default_branch(project: project_pb2.Project) -> str:
    return check_branch(project.default_branch or "main")


def ensure_initiative_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative
) -> None:
    """The initiative branch, from the project's default branch as last fetched."""
    git.ensure_branch(project.id, check_branch(initiative.branch), f"refs/remotes/origin/{default_branch(project)}")


def ensure_phase_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, phase_id: str
) -> None:
    ensure_initiative_branch(git, project, initiative)
    git.ensure_branch(project.id, phase_branch(phase_id), f"refs/heads/{check_branch(initiative.branch)}")


def prepare_task_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, task: task_pb2.Task
) -> None:
    """Rule 4 lives in `Workspace.prepare_task_branch`: a branch with commits is continued, never reset."""
    ensure_initiative_branch(git, project, initiative)
    base = base_branch(task, initiative)
    if task.phase_id:
        git.ensure_branch(project.id, base, f"refs/heads/{check_branch(initiative.branch)}")
    if task.merge_source_task_id or task.merge_source_phase_id:
        start, merge_in = merge_sides(git, project, initiative, task)
        message = f"Merge {merge_in} into {start}: the conflicts are left for the merge agent"
        conflicts.prepare_merge_branch(git, project.id, task_branch(task.id), start, merge_in, message=message)
        return
    git.prepare_task_branch(project.id, task_branch(task.id), base)


def merge_sides(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, task: task_pb2.Task
) -> tuple[str, str]:
    """A merge task's branch starts from one side and merges in the other: the source task's work
    with its base branch merged in, or the phase branch with the initiative branch merged in. Its
    base is then an ancestor of its branch, so its own merge goes through."""
    base = base_branch(task, initiative)
    if task.merge_source_phase_id:
        return base, check_branch(initiative.branch)
    source = task_branch(task.merge_source_task_id)
    return (source if git.branch_exists(project.id, source) else base), base


def add_task_worktree(git: Workspace, project: project_pb2.Project, task: task_pb2.Task, workdir: Path) -> None:
    """The project's worktree at `<workdir>/<project name>/`, on the task's branch."""
    git.add_worktree(project.id, workdir / safe_component(project.name, "project name"), task_branch(task.id))
