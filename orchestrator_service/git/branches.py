"""Which branch each piece of work lives on, and getting those branches ready in every project.

Fetching is the projects controller's job (it happens when a phase starts, not per task); these
functions work on the clone as it is.
"""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
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
    git.prepare_task_branch(project.id, task_branch(task.id), base)


def add_task_worktree(git: Workspace, project: project_pb2.Project, task: task_pb2.Task, workdir: Path) -> None:
    """The project's worktree at `<workdir>/<project name>/`, on the task's branch."""
    git.add_worktree(project.id, workdir / safe_component(project.name, "project name"), task_branch(task.id))
