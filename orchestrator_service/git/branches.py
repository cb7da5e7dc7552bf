"""Which branch each piece of work lives on, and getting those branches ready in every project.

Fetching the project's own repository is the projects controller's job (it happens when a phase
starts, not per task). cw's own branches come from the project's shared remote when it has one
(git/shared.py): pulled before they are built on, published when made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
from orchestrator_service.git import agent_repos, conflicts, shared
from orchestrator_service.git.repo import check_branch
from orchestrator_service.git.workspace import Workspace, phase_branch, task_branch
from orchestrator_service.paths import safe_component


def base_branch(task: task_pb2.Task, initiative: initiative_pb2.Initiative) -> str:
    """A task branches from (and merges back into) its phase branch, or the initiative branch."""
    return phase_branch(task.phase_id) if task.phase_id else check_branch(initiative.branch)


def default_branch(project: project_pb2.Project) -> str:
    return check_branch(project.default_branch or "main")


def ensure_initiative_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, *, pulled: bool = False
) -> None:
    """The initiative branch, from the project's default branch as last fetched."""
    start = f"refs/remotes/origin/{default_branch(project)}"
    shared.ensure_shared_branch(git, project, check_branch(initiative.branch), start, pulled=pulled)


def ensure_phase_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, phase_id: str
) -> None:
    ensure_initiative_branch(git, project, initiative)
    start = f"refs/heads/{check_branch(initiative.branch)}"
    shared.ensure_shared_branch(git, project, phase_branch(phase_id), start)


def prepare_task_branch(
    git: Workspace, project: project_pb2.Project, initiative: initiative_pb2.Initiative, task: task_pb2.Task
) -> None:
    """Work is never thrown away; that lives in `Workspace.prepare_task_branch`: a branch with
    commits is continued, never reset; with a shared remote, the task's branch as the last settled
    run pushed it (wherever it ran) is the one continued."""
    base = base_branch(task, initiative)
    sources = [task_branch(task.merge_source_task_id)] if task.merge_source_task_id else []
    worktree = task_worktree(git, project, task)
    exists = git.exists(project.id) and git.branch_exists(project.id, task_branch(task.id))
    if exists:
        git.checkpoint(project.id, worktree, task_branch(task.id))  # before a pull can move the branch
    shared.pull(git, project, check_branch(initiative.branch), base, task_branch(task.id), *sources)
    ensure_initiative_branch(git, project, initiative, pulled=True)
    if task.phase_id:
        start = f"refs/heads/{check_branch(initiative.branch)}"
        shared.ensure_shared_branch(git, project, base, start, pulled=True)
    if task.merge_source_task_id or task.merge_source_phase_id:
        start, merge_in = merge_sides(git, project, initiative, task)
        message = f"Merge {merge_in} into {start}: the conflicts are left for the merge agent"
        conflicts.prepare_merge_branch(git, project.id, task_branch(task.id), start, merge_in, message=message)
    else:
        # A pull from the shared remote may have made the branch since it was looked for.
        known = None if project.shared_remote else exists
        git.prepare_task_branch(project.id, task_branch(task.id), base, exists=known)
    git.follow(project.id, worktree, task_branch(task.id))


def task_worktree(git: Workspace, project: project_pb2.Project, task: task_pb2.Task) -> Path:
    """Where the task's runs have the project's worktree (controllers/agent_runs/workdirs.py)."""
    return git.task_dir(task.id) / safe_component(project.name, "project name")


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
    """The project's repository at `<workdir>/<project name>/`, on the task's branch: the task's
    own, borrowing the clone's objects (git/agent_repos.py)."""
    git.add_worktree(project.id, task_repo(project, workdir), task_branch(task.id))


def release_task(git: Workspace, project: project_pb2.Project, task_id: str) -> None:
    """The task's work is merged: its repository goes (and a worktree of an earlier cw) once its
    branch holds everything in it; the branch keeps every commit."""
    if git.exists(project.id):
        git.release_branch(project.id, task_branch(task_id))


def task_repo(project: project_pb2.Project, workdir: Path) -> Path:
    return workdir / safe_component(project.name, "project name")


def fetch_run_branches(git: Workspace, projects: Sequence[project_pb2.Project], task_id: str) -> None:
    """After a run (settled, stopped): its task branch in every project, fetched back."""
    if task_id:
        for project in projects:
            fetch_task_branch(git, project, task_id, git.task_dir(task_id))


def fetch_task_branch(git: Workspace, project: project_pb2.Project, task_id: str, workdir: Path) -> bool:
    """The task branch as the run left it in `<workdir>/<project name>/`, back into the clone."""
    if not git.exists(project.id):
        return False
    return agent_repos.fetch_back(git.repo(project.id), task_repo(project, workdir), task_branch(task_id))
