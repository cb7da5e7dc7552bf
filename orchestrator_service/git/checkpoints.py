"""Checkpoints: whatever a run left in its worktree, committed to its task branch, so that nothing an
agent did is lost when its run ends, however it ends, nor when its worktree is reused or removed.

A checkpoint takes every change git sees in the worktree against the tip of the task branch
(tracked files changed or deleted, untracked files not ignored by the repository), except files
over a size cap, which are left where they are and listed. It is built with the orchestrator's own
clone and an index file of its own (`--git-dir`, `--work-tree`, `GIT_INDEX_FILE`), never with what
the worktree's `.git` file points to, so an agent that broke its worktree's git files (a stale
`index.lock`, a deleted `.git`, a detached HEAD) cannot keep its files from being committed. The
commit's parent is the branch's tip and the branch moves with a compare-and-swap (`update-ref NEW
OLD`); afterwards the worktree's own index and HEAD are set to the new tip, so the next run starts
from a clean `git status`.

Deciding which files a checkpoint takes is pure (`select`, `parse_status`: unit-tested); the rest
is git through `repo.git`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_service.git.repo import GitError, git, head_ref, repository_lock

# Files larger than this stay out of a checkpoint (`--checkpoint-max-file-bytes`).
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
# How many left-out files a reason names before it says how many more there are.
LISTED_LEFT_OUT = 20
_IDENTITY_PART = re.compile(r"[A-Za-z0-9._@+-]{1,200}")


@dataclass(frozen=True)
class Identity:
    """Who a commit names as author and committer."""

    name: str
    email: str

    def config(self) -> list[str]:
        """`-c user.name=... -c user.email=...`, after checking neither can carry anything else."""
        for part in (self.name, self.email):
            if not _IDENTITY_PART.fullmatch(part):
                raise GitError(f"{part!r} cannot name a commit's author")
        return ["-c", f"user.name={self.name}", "-c", f"user.email={self.email}"]


CW_IDENTITY = Identity("cw", "cw@localhost")
# Where agents' commit addresses live (`--agent-email-domain`): reserved, so it reaches nobody.
DEFAULT_EMAIL_DOMAIN = "agents.cw.invalid"
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


DEFAULT_MAX_WORKTREE_BYTES = 2 * 1024**3


def worktree_bytes(directory: Path) -> int:
    """What a run's directory holds, its repository's own `.git` aside: files counted once, by
    their size, without following symlinks."""
    total = 0
    for root, directories, files in os.walk(directory, followlinks=False):
        directories[:] = [name for name in directories if name != ".git"]
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def describe_oversize(size: int, limit: int, project: str) -> str:
    """The reason's line for a project whose directory grew past `--agent-max-worktree-bytes`."""
    return (
        f"the worktree of project {project} holds {size / 1024**2:.0f} MiB, over the "
        f"{limit / 1024**2:.0f} MiB a run may leave (--agent-max-worktree-bytes): its checkpoint keeps what "
        "git takes; clean it up or raise the limit"
    )


def check_email_domain(domain: str) -> str:
    """A domain for agents' addresses: plain labels, nothing git or a mail header could misread."""
    if len(domain) > 200 or not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{domain!r} is not a domain name")
    return domain


def agent_identity(agent_name: str, domain: str = DEFAULT_EMAIL_DOMAIN) -> Identity:
    """An agent's commits name it: `tidy-jackal <tidy-jackal@DOMAIN>`."""
    return Identity(agent_name, f"{agent_name}@{domain}")


@dataclass(frozen=True)
class Change:
    """A path git sees changed in the worktree, with the size of what is there now (None: deleted,
    or not a file whose size counts: a symbolic link, a nested repository)."""

    path: str
    size: int | None


@dataclass(frozen=True)
class Selection:
    taken: list[str]
    left_out: list[Change]


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint did: its commit ("" when there was nothing to commit), the paths it
    took, and the files it left out for their size."""

    commit: str = ""
    taken: list[str] = field(default_factory=list)
    left_out: list[Change] = field(default_factory=list)


def parse_status(output: str) -> list[str]:
    """The paths `git status --porcelain -z --no-renames` shows changed in the work tree against
    the index: modified, deleted or changed in type (the second column), or untracked (`??`)."""
    paths = []
    for entry in output.split("\0"):
        if len(entry) < 4:
            continue
        staged, unstaged, path = entry[0], entry[1], entry[3:]
        if (staged, unstaged) == ("?", "?") or unstaged in ("M", "D", "T"):
            paths.append(path)
    return paths


def select(changes: Iterable[Change], max_file_bytes: int) -> Selection:
    """Every change but the files over the cap (a deletion or a link always counts as small)."""
    taken, left_out = [], []
    for change in changes:
        if change.size is not None and change.size > max_file_bytes:
            left_out.append(change)
        else:
            taken.append(change.path)
    return Selection(taken, left_out)


def describe_left_out(left_out: Sequence[Change], max_file_bytes: int, project: str = "") -> str:
    """One line a person reads in the run's reason: which files stayed out, and why."""
    where = f"{project}/" if project else ""
    named = [f"{where}{change.path} ({change.size} bytes)" for change in left_out[:LISTED_LEFT_OUT]]
    more = len(left_out) - len(named)
    listing = ", ".join(named) + (f" and {more} more" if more > 0 else "")
    return f"left out of the checkpoint (over {max_file_bytes} bytes), still in the worktree: {listing}"


def _size(worktree: Path, path: str) -> int | None:
    try:
        found = os.lstat(worktree / path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return found.st_size if os.path.isfile(worktree / path) and not os.path.islink(worktree / path) else None


def _commit_and_tree(repo: Path, ref: str) -> tuple[str, str]:
    """The commit a branch (`refs/heads/...`, never an option) points at and that commit's tree,
    in one git process."""
    result = git(repo, "rev-parse", f"{ref}^{{commit}}", f"{ref}^{{tree}}", check=False)
    found = result.stdout.split()
    if result.returncode != 0 or len(found) != 2:
        raise GitError(f"{ref} is not a branch of this repository")
    return found[0], found[1]


def checkpoint(
    repo: Path, worktree: Path, branch: str, message: str, *, identity: Identity, max_file_bytes: int
) -> Checkpoint:
    """Commits what is left in `worktree` (a worktree of the clone `repo`) onto `branch`."""
    ref = head_ref(branch)
    if not worktree.is_dir():
        return Checkpoint()
    with repository_lock(repo), tempfile.TemporaryDirectory(prefix="cw-checkpoint-") as scratch:
        index = Path(scratch) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        on = ["--literal-pathspecs", f"--git-dir={repo / '.git'}", f"--work-tree={worktree}"]
        tip, tip_tree = _commit_and_tree(repo, ref)
        git(repo, *on, "read-tree", ref, env=env)
        status = git(repo, *on, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", env=env)
        chosen = select((Change(path, _size(worktree, path)) for path in parse_status(status.stdout)), max_file_bytes)
        if chosen.taken:
            listing = Path(scratch) / "paths"
            listing.write_bytes(b"\0".join(os.fsencode(path) for path in chosen.taken) + b"\0")
            add = ["add", "--all", f"--pathspec-from-file={listing}", "--pathspec-file-nul"]
            git(repo, *on, *add, env=env)
        # Nothing taken: the index is the tip's tree as read (no git process to say so).
        tree = git(repo, *on, "write-tree", env=env).stdout.strip() if chosen.taken else tip_tree
        commit = ""
        if tree != tip_tree:
            commit = git(repo, *identity.config(), "commit-tree", tree, "-p", tip, "-m", message).stdout.strip()
            git(repo, "update-ref", "-m", "cw: checkpoint", ref, commit, tip)
        _settle_worktree(repo, worktree, ref, index)
        return Checkpoint(commit, chosen.taken if commit else [], chosen.left_out)


def admin_dir(repo: Path, worktree: Path) -> Path | None:
    """The clone's administrative directory of `worktree` (`.git/worktrees/<id>`), found from the
    clone's side (its `gitdir` file names the worktree), never from the worktree's `.git` file."""
    wanted = os.path.realpath(worktree / ".git")
    for gitdir in sorted((repo / ".git" / "worktrees").glob("*/gitdir")):
        try:
            named = gitdir.read_text().strip()
        except OSError:
            continue
        if os.path.realpath(named) == wanted:
            return gitdir.parent
    return None


def _settle_worktree(repo: Path, worktree: Path, ref: str, index: Path) -> None:
    """The worktree on its branch again, with the checkpoint's index (stale locks of a run that
    died gone), so `git status` there shows only what the checkpoint left out."""
    admin = admin_dir(repo, worktree)
    if admin is None:
        return
    for lock in ("index.lock", "HEAD.lock"):
        (admin / lock).unlink(missing_ok=True)
    (admin / "HEAD").write_text(f"ref: {ref}\n")
    staged = admin / "index.cw-checkpoint"
    shutil.copyfile(index, staged)
    os.replace(staged, admin / "index")


def is_clean(repo: Path, worktree: Path, branch: str) -> bool:
    """Whether the branch holds everything in the worktree (nothing changed, nothing untracked
    that is not ignored): the condition for removing it."""
    if not worktree.is_dir():
        return True
    with repository_lock(repo), tempfile.TemporaryDirectory(prefix="cw-checkpoint-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        on = [f"--git-dir={repo / '.git'}", f"--work-tree={worktree}"]
        git(repo, *on, "read-tree", head_ref(branch), env=env)
        status = git(repo, *on, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", env=env)
        return not parse_status(status.stdout)
