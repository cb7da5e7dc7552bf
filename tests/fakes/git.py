"""A stand-in for the orchestrator's git workspace (orchestrator_service/git/workspace.py) in the
in-process tests: the paths are the real ones, the few git calls the controllers make here answer
from memory (no shared remote: the branch calls git/shared.py makes then are these). A project's
clone "exists" once synced; a sync fails for a url the test made
unreachable, with git's kind of message; a checkpoint commits nothing; a task branch holds commits
unless the test says it holds none (a run that changed nothing)."""

from __future__ import annotations

import subprocess
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
        # Task ids whose branches hold no commit beyond their base (a run that changed nothing).
        self.empty_branches: set[str] = set()
        # (project id, branch) made: a phase's, an initiative's, a task's.
        self.branches: set[tuple[str, str]] = set()

    def exists(self, project_id: str) -> bool:
        return project_id in self.cloned

    def sync(self, project_id: str, url: str) -> None:
        self.syncs.append((project_id, url))
        if url in self.unreachable:
            raise GitError(f"fatal: repository '{url}' does not exist")
        if project_id not in self.cloned:
            # An empty repository, for what reads the clone with git itself (a task's changed files
            # for an answering agent's prompt: none to tell).
            subprocess.run(["git", "init", "--quiet", str(self.repo(project_id))], check=True)
        self.cloned.add(project_id)

    def branch_exists(self, project_id: str, branch: str) -> bool:
        return (project_id, branch) in self.branches

    def has_commits_beyond(self, project_id: str, base: str, branch: str) -> bool:
        return branch.removeprefix("cw-task/") not in self.empty_branches

    def checkpoint(
        self, project_id: str, worktree: Path, branch: str, *args: object, **kwargs: object
    ) -> checkpoints.Checkpoint:
        return checkpoints.Checkpoint()

    def add_worktree(self, project_id: str, where: Path, branch: str) -> None:
        where.mkdir(parents=True, exist_ok=True)

    def ensure_branch(self, project_id: str, branch: str, start_point: str) -> None:
        self.branches.add((project_id, branch))

    def prepare_task_branch(
        self, project_id: str, branch: str, base_branch: str, *, exists: bool | None = None
    ) -> None:
        self.branches.add((project_id, branch))

    def follow(self, project_id: str, where: Path, branch: str) -> None:
        return None
