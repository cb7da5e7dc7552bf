"""An agent's own repository per project: the only git ref it can move is its task branch.

A git worktree would share everything of the orchestrator's clone with the agent: its refs (every
other branch), its config (which the orchestrator's own git commands read) and its object store
(writable, so an agent could delete what other branches need). So an agent gets a clone of its
own instead, on its task branch alone: `git clone --shared --single-branch` borrows the objects of
the orchestrator's clone through `objects/info/alternates` (nothing is copied, and inside cw's
sandbox that object store is the one thing of the clone the agent sees, read-only), and the
agent's new objects, refs and config stay in its own repository.

When the run ends, before anything reads the task branch, the orchestrator fetches that one
branch back into its clone (`fetch_back`): whatever else the agent did in its repository (other
branches, tags, its config) stays there. The fetch forces: the task branch is the agent's to move,
as it was with a worktree.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from orchestrator_service.agents import control_files
from orchestrator_service.git.repo import GitError, git, head_ref, repository_lock

log = logging.getLogger("cw.orchestrator")


def borrowed_objects(clone: Path) -> Path:
    """The object store an agent's repository borrows from (read-only in its sandbox)."""
    return clone / ".git" / "objects"


def is_agent_repo(where: Path) -> bool:
    """A repository of its own (a worktree has a `.git` file instead)."""
    return (where / ".git").is_dir() and not (where / ".git").is_symlink()


def make(clone: Path, where: Path, branch: str) -> None:
    """The agent's repository at `where`, on `branch` as the orchestrator's clone holds it. One
    that exists already (a resumed agent's) stays as the agent left it."""
    if is_agent_repo(where):
        return
    if where.exists() or where.is_symlink():  # a worktree of an earlier cw, or a clone that died half-way
        if where.is_dir() and not where.is_symlink():
            shutil.rmtree(where)
        else:
            where.unlink()
    where.parent.mkdir(parents=True, exist_ok=True)
    with repository_lock(clone):
        arguments = ["clone", "--quiet", "--shared", "--single-branch", "--no-tags", "--branch", branch]
        git(where.parent, *arguments, "--", str(clone), str(where))


def remove_for_branch(agents: Path, repository_name: str, branch: str) -> None:
    """The agents' repositories of one project on `branch` go (a merged phase's tasks: their
    commits are in the orchestrator's clone). Each agent's HEAD file is only read, capped, never
    followed: at worst an agent names another branch there and loses its own repository early."""
    wanted = f"ref: {head_ref(branch)}".encode()
    for work in agents.glob(f"*/work/{repository_name}"):
        try:
            head = control_files.read_bytes(work / ".git" / "HEAD", 4096)
        except OSError:
            continue
        if is_agent_repo(work) and head is not None and head.strip() == wanted:
            shutil.rmtree(work, ignore_errors=True)


def fetch_back(clone: Path, where: Path, branch: str) -> bool:
    """The task branch as the agent left it in its repository, into the orchestrator's clone.
    False (logged) when there is nothing to fetch: no repository of its own there, or the agent
    deleted its branch; the orchestrator's branch then stays as it was."""
    if not is_agent_repo(where):
        return False
    ref = head_ref(branch)
    with repository_lock(clone):
        try:
            git(clone, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", str(where), f"+{ref}:{ref}")
        except GitError as error:
            log.warning("the task branch %s was not fetched back from %s: %s", branch, where.name, error)
            return False
    return True
