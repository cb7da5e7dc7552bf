"""A stand-in for the orchestrator's git workspace (orchestrator_service/git/workspace.py) in the
in-process tests: the paths are the real ones, the few git calls the controllers make here answer
from memory. A project's clone "exists" once synced; a sync fails for a url the test made
unreachable, with git's kind of message; a checkpoint commits nothing; a task branch holds commits
unless the test says it holds none (a run that changed nothing)."""

from __future__ import annotations

from pathlib import Path

from orchestrator_service.git import checkpoints
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import Workspace


class FakeGit(Workspace):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        # Urls a clone or fetch fails from, as from a missing repository (every other one works).
        self.unreachable: set[str] = set()
        self.cloned: set[str] = set()
        self.syncs: list[tuple[str, str]] = []
        # Task branches without commits beyond their base (task id -> True).
        self.empty_branches: set[str] = set()

    def exists(self, project_id: str) -> bool:
        return project_id in self.cloned

    def sync(self, project_id: str, url: str) -> None:
        self.syncs.append((project_id, url))
        if url in self.unreachable:
            raise GitError(f"fatal: repository '{url}' does not exist")
        self.cloned.add(project_id)

    def branch_exists(self, project_id: str, branch: str) -> bool:
        return project_id in self.cloned

    def has_commits_beyond(self, project_id: str, base: str, branch: str) -> bool:
        return branch.removeprefix("cw-task/") not in self.empty_branches

    def checkpoint(self, project_id: str, worktree: Path, branch: str, *args: object, **kwargs: object) -> checkpoints.Checkpoint:
        return checkpoints.Checkpoint()

    def add_worktree(self, project_id: str, where: Path, branch: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
