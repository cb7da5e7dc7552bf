"""The orchestrator's git work: clones, branches, agent worktrees, merges and diffs.

Everything happens in clones under the workspace; the user's own checkout is only ever cloned and
fetched from. Merges run in a worktree of the orchestrator's own, one per project.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_service.git.repo import GitError, git, repository_lock


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    conflicts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileStat:
    path: str
    additions: int
    deletions: int
    change: str  # A, M or D


@dataclass(frozen=True)
class Diff:
    base: str
    head: str
    files: list[FileStat]
    unified: str


def phase_branch(phase_id: str) -> str:
    """Phase and task branches live beside `cw/<initiative>`, never under it: git cannot hold both
    `a/b` and `a/b/c`."""
    return f"cw-phase/{phase_id}"


def task_branch(task_id: str) -> str:
    return f"cw-task/{task_id}"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.repos = root / "repos"
        self.merges = root / "merges"

    def repo(self, project_id: str) -> Path:
        return self.repos / project_id

    def sync(self, project_id: str, url: str) -> Path:
        """Clones the project on first use, fetches it after."""
        path = self.repo(project_id)
        with repository_lock(path):
            if not (path / ".git").exists():
                self.repos.mkdir(parents=True, exist_ok=True)
                source = url if "://" in url else str(Path(url).expanduser().resolve())
                git(self.repos, "clone", "--no-checkout", "--quiet", source, str(path))
            else:
                git(path, "fetch", "--prune", "--quiet", "origin")
        return path

    def ensure_branch(self, project_id: str, branch: str, start_point: str) -> None:
        path = self.repo(project_id)
        with repository_lock(path):
            if not self.branch_exists(project_id, branch):
                git(path, "branch", "--no-track", branch, start_point)

    def branch_exists(self, project_id: str, branch: str) -> bool:
        return (
            git(
                self.repo(project_id), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
            ).returncode
            == 0
        )

    def rev_parse(self, project_id: str, ref: str) -> str:
        return git(self.repo(project_id), "rev-parse", "--verify", ref).stdout.strip()

    def has_commits_beyond(self, project_id: str, base: str, branch: str) -> bool:
        """Rule 4: any error while checking counts as "has commits"."""
        try:
            count = git(self.repo(project_id), "rev-list", "--count", f"{base}..{branch}").stdout.strip()
            return int(count) > 0
        except (GitError, ValueError):
            return True

    def prepare_task_branch(self, project_id: str, branch: str, base_branch: str) -> None:
        """Creates the task branch from its base, or moves an empty one up to the base. A branch
        with commits of its own is never moved: the next agent continues on it."""
        path = self.repo(project_id)
        with repository_lock(path):
            if not self.branch_exists(project_id, branch):
                git(path, "branch", "--no-track", branch, base_branch)
            elif not self.has_commits_beyond(project_id, base_branch, branch):
                self._release_branch(path, branch)
                git(path, "branch", "-f", branch, base_branch)

    def add_worktree(self, project_id: str, where: Path, branch: str) -> None:
        path = self.repo(project_id)
        with repository_lock(path):
            self._release_branch(path, branch)
            where.parent.mkdir(parents=True, exist_ok=True)
            git(path, "worktree", "add", "--quiet", str(where), branch)

    def _release_branch(self, path: Path, branch: str) -> None:
        """Removes the worktree (of an earlier agent) that has the branch checked out, if any.
        Its committed work stays on the branch."""
        listing = git(path, "worktree", "list", "--porcelain").stdout
        for block in listing.split("\n\n"):
            lines = dict(line.split(" ", 1) for line in block.splitlines() if " " in line)
            if lines.get("branch") == f"refs/heads/{branch}":
                git(path, "worktree", "remove", "--force", lines["worktree"], check=False)
                shutil.rmtree(lines["worktree"], ignore_errors=True)
        git(path, "worktree", "prune")

    def is_merged(self, project_id: str, source: str, target: str) -> bool:
        result = git(self.repo(project_id), "merge-base", "--is-ancestor", source, target, check=False)
        if result.returncode > 1:
            raise GitError(result.stderr.strip())
        return result.returncode == 0

    def merge_base(self, project_id: str, first: str, second: str) -> str:
        return git(self.repo(project_id), "merge-base", first, second).stdout.strip()

    def merge(self, project_id: str, target: str, source: str, message: str) -> MergeResult:
        """`git merge --no-ff source` into target in the orchestrator's own worktree; a conflict is
        aborted, leaving target exactly as it was."""
        path = self.repo(project_id)
        worktree = self.merges / project_id
        with repository_lock(path):
            if not (worktree / ".git").exists():
                shutil.rmtree(worktree, ignore_errors=True)
                git(path, "worktree", "prune")
                worktree.parent.mkdir(parents=True, exist_ok=True)
                git(path, "worktree", "add", "--quiet", "--detach", str(worktree))
            git(worktree, "checkout", "--quiet", "--force", target)
            git(worktree, "reset", "--quiet", "--hard", target)
            result = git(worktree, "merge", "--no-ff", "--no-edit", "-m", message, source, check=False)
            if result.returncode == 0:
                return MergeResult(True)
            conflicts = git(worktree, "diff", "--name-only", "--diff-filter=U").stdout.split()
            git(worktree, "merge", "--abort", check=False)
            git(worktree, "reset", "--quiet", "--hard", target)
            if not conflicts:
                raise GitError(f"merge of {source} into {target} failed: {result.stderr.strip()}")
            return MergeResult(False, conflicts)

    def diff(self, project_id: str, base: str, head: str) -> Diff:
        path = self.repo(project_id)
        base_commit, head_commit = self.rev_parse(project_id, base), self.rev_parse(project_id, head)
        changes = {}
        for line in git(path, "diff", "--no-renames", "--name-status", base_commit, head_commit).stdout.splitlines():
            status, name = line.split("\t", 1)
            changes[name] = status[0]
        files = []
        for line in git(path, "diff", "--no-renames", "--numstat", base_commit, head_commit).stdout.splitlines():
            added, deleted, name = line.split("\t", 2)
            files.append(
                FileStat(
                    name,
                    int(added) if added != "-" else 0,
                    int(deleted) if deleted != "-" else 0,
                    changes.get(name, "M"),
                )
            )
        unified = git(path, "diff", "--no-renames", base_commit, head_commit).stdout
        return Diff(base_commit, head_commit, files, unified)
