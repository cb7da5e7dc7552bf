"""Delivery: the initiative branch against the project's default branch, and pushed into the
project's own repository as a branch of the same name.

A push never touches the branch checked out in the user's repository (asked of the repository
itself, `ls-remote --symref`; git's own `receive.denyCurrentBranch` stands behind that check), is a
fast-forward or nothing (no force: a branch the user moved on keeps their commits), and names
every ref in full after `--`. The receiving repository's own hooks (`pre-receive`...) run as on any
push into it: they are its owner's policy, and may refuse the branch (PUSH_REJECTED).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator_service.git.repo import GitError, check_branch, git, head_ref, repository_lock
from orchestrator_service.git.workspace import Diff, Workspace


class DeliveryRefused(GitError):
    """The push would touch what it must not, or the repository refused it; `reason` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Delivered:
    branch: str
    commit: str


def default_ref(default_branch: str) -> str:
    """The project's default branch as last fetched from its repository."""
    return f"refs/remotes/origin/{check_branch(default_branch)}"


def initiative_diff(ws: Workspace, project_id: str, branch: str, default_branch: str) -> Diff | None:
    """The initiative branch against where it left the default branch; None before it exists."""
    if not ws.exists(project_id) or not ws.branch_exists(project_id, branch):
        return None
    path = ws.repo(project_id)
    head = ws.commit_of(project_id, head_ref(branch))
    base = git(path, "merge-base", default_ref(default_branch), head_ref(branch)).stdout.strip()
    return ws.diff(project_id, ws.commit_of(project_id, base), head)


def checked_out_branch(ws: Workspace, project_id: str) -> str:
    """The branch the project's own repository has checked out (its HEAD), or "" when it says none."""
    listing = git(ws.repo(project_id), "ls-remote", "--symref", "--", "origin", "HEAD").stdout
    for line in listing.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target.removeprefix("ref: refs/heads/")
    return ""


def push_branch(ws: Workspace, project_id: str, branch: str) -> Delivered:
    """Pushes `branch` to the project's repository (`origin`, the project's url), fast-forward only."""
    ref = head_ref(branch)
    path = ws.repo(project_id)
    with repository_lock(path):
        if checked_out_branch(ws, project_id) == branch:
            raise DeliveryRefused(
                f"branch {branch!r} is checked out in the project's repository: switch it to another branch first",
                "BRANCH_CHECKED_OUT",
            )
        result = git(path, "push", "--porcelain", "--", "origin", f"{ref}:{ref}", check=False)
        if result.returncode != 0:
            said = [line for line in result.stdout.splitlines() if line.startswith("!")]
            said = said or result.stderr.strip().splitlines()[-1:]
            why = said[0].split("\t")[-1] if said else "refused"
            raise DeliveryRefused(f"the project's repository refused branch {branch!r}: {why}", "PUSH_REJECTED")
        return Delivered(branch, ws.commit_of(project_id, ref))
