"""Which branch each piece of work lives on, and getting those branches ready in every project."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
from orchestrator_service.git.workspace import Workspace, phase_branch, task_branch


def base_branch(task: task_pb2.Task, initiative: initiative_pb2.Initiative) -> str:
    """A task branches from (and merges back into) its phase branch, or the initiative branch."""
    return phase_branch(task.phase_id) if task.phase_id else initiative.branch


def ensure_initiative_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative
) -> None:
    """Fetches the project, then makes sure the initiative branch exists (from the default branch)."""
    git.sync(project.id, project.url)
    git.ensure_branch(project.id, initiative.branch, f"origin/{project.default_branch or 'main'}")


def ensure_phase_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, phase_id: str
) -> None:
    ensure_initiative_branch(git, project, initiative)
    git.ensure_branch(project.id, phase_branch(phase_id), initiative.branch)


def prepare_task_worktree(
    git: Workspace,
    project: project_pb2.Project,
    initiative: initiative_pb2.Initiative,
    task: task_pb2.Task,
    workdir: Path,
) -> None:
    """Rule 4 lives in `prepare_task_branch`: a branch with commits is continued, never reset."""
    ensure_initiative_branch(git, project, initiative)
    base = base_branch(task, initiative)
    if task.phase_id:
        git.ensure_branch(project.id, base, initiative.branch)
    git.prepare_task_branch(project.id, task_branch(task.id), base)
    git.add_worktree(project.id, workdir / project.name, task_branch(task.id))
