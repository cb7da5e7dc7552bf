"""A task's own repository per project: the only git ref its agents can move is its task branch.

A git worktree would share everything of the orchestrator's clone with the agent: its refs (every
other branch), its config (which the orchestrator's own git commands read) and its object store
(writable, so an agent could delete what other branches need). So a task gets a clone of its
own instead, on its task branch alone, at `tasks/<task id>/<project>/` (the same path for every
attempt and resume: controllers/agent_runs/workdirs.py): `git clone --shared --single-branch` borrows the
objects of the orchestrator's clone through `objects/info/alternates` (nothing is copied, and
inside cw's sandbox that object store is the one thing of the clone the agent sees, read-only),
and the agent's new objects, refs and config stay in its own repository.

When a run ends, before anything reads the task branch, the orchestrator fetches that one branch
back into its clone (`fetch_back`): whatever else the agent did in its repository (other
branches, tags, its config) stays there until the next checkpoint. The fetch forces: the task
branch is the agent's to move. The checkpoint that follows (git/checkpoints.py, run with the
clone's own git directory, never the agent's) commits what the run left in the directory onto
that branch, and `renew` then gives the directory a fresh `.git` on the branch's new tip: the next
run starts there, and no git command of the orchestrator ever writes through refs, config or
hooks an agent left in its repository.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from orchestrator_service.agents import control_files
from orchestrator_service.git.repo import GitError, git, head_ref, repository_lock

log = logging.getLogger("cw.orchestrator")
# The longest `objects/info/alternates` read when looking for a clone's task repositories.
ALTERNATES_CAP = 4096
# A task's repository gets no template files (sample hooks, `description`, `info/exclude`): half
# the files of its `.git`, made at every start and renewal and removed at the next renewal.
NO_TEMPLATE = ("--template=",)


def borrowed_objects(clone: Path) -> Path:
    """The object store an agent's repository borrows from (read-only in its sandbox)."""
    return clone / ".git" / "objects"


def is_agent_repo(where: Path) -> bool:
    """A repository of its own (a worktree has a `.git` file instead)."""
    return not where.is_symlink() and (where / ".git").is_dir() and not (where / ".git").is_symlink()


def borrows_from(where: Path, clone: Path) -> bool:
    """Whether `where` is a task repository of `clone`: its alternates (read capped, never through
    a symlink) name the clone's object store."""
    if not is_agent_repo(where):
        return False
    try:
        named = control_files.read_bytes(where / ".git" / "objects" / "info" / "alternates", ALTERNATES_CAP)
    except OSError:
        return False
    wanted = os.path.realpath(borrowed_objects(clone))
    lines = (named or b"").decode(errors="replace").splitlines()
    return any(os.path.realpath(line.strip()) == wanted for line in lines if line.strip())


def make(clone: Path, where: Path, branch: str) -> None:
    """The task's repository at `where` (which does not exist), on `branch` as the clone holds it.

    Under the task repository's own lock, not the clone's: a clone only reads the clone's refs and
    objects, each of which git writes atomically (a new file renamed into place), and nothing cw
    does removes an object (`gc.auto` is 0), so one task's repository is made while other tasks'
    git work goes on. The task repository's lock is a leaf: no other lock is taken under it."""
    where.parent.mkdir(parents=True, exist_ok=True)
    with repository_lock(where):
        arguments = ["clone", "--quiet", *NO_TEMPLATE, "--shared", "--single-branch", "--no-tags", "--branch", branch]
        git(where.parent, *arguments, "--", str(clone), str(where))


def renew(clone: Path, where: Path, branch: str, scratch: Path) -> None:
    """`where` keeps its files but gets a fresh `.git`, on `branch` as the clone holds it, its index
    that tip's (nothing of the files is touched): whatever the agent left in its old `.git` (refs,
    config, hooks, symlinks) goes. Built in `scratch` (beside the tasks, on the same filesystem)
    and moved into place. Under the task repository's lock alone (see `make`)."""
    scratch.mkdir(parents=True, exist_ok=True)
    with repository_lock(where), tempfile.TemporaryDirectory(prefix="cw-repo-", dir=scratch) as building:
        fresh = Path(building) / "repo"
        arguments = [
            "clone",
            "--quiet",
            *NO_TEMPLATE,
            "--shared",
            "--no-checkout",
            "--single-branch",
            "--no-tags",
            "--branch",
            branch,
        ]
        git(Path(building), *arguments, "--", str(clone), str(fresh))
        old = where / ".git"
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
        os.replace(fresh / ".git", old)
        git(where, "reset", "--quiet", head_ref(branch), check=False)


def fetch_back(clone: Path, where: Path, branch: str, *, force: bool = True) -> bool:
    """The task branch as the agent left it in its repository, into the orchestrator's clone.
    False (logged) when there is nothing to fetch: no repository of its own there, or the agent
    deleted its branch; the orchestrator's branch then stays as it was. `force` False: only
    forward (commits of a run no settlement fetched, never over a branch cw moved since)."""
    if not is_agent_repo(where):
        return False
    ref = head_ref(branch)
    with repository_lock(clone):
        try:
            refspec = f"{'+' if force else ''}{ref}:{ref}"
            git(clone, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", str(where), refspec)
        except GitError as error:
            log.warning("the task branch %s was not fetched back from %s: %s", branch, where.name, error)
            return False
    return True
