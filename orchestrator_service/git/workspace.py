"""The orchestrator's git work: clones, branches, agent worktrees, merges and diffs.

Everything happens in clones under the workspace (`repos/<project id>`); the user's own checkout is
only ever cloned and fetched from. Merges run in a worktree of the orchestrator's own, one per
project. Paths derive from ids; names and refs from data are checked before they reach git.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_service.git import agent_repos, checkpoints
from orchestrator_service.git.repo import GitError, check_branch, git, head_ref, repository_lock
from orchestrator_service.paths import safe_id, within

log = logging.getLogger("cw.orchestrator")
# A checkpoint cw makes itself, of a worktree it is about to reuse or remove (the run's own
# checkpoint, made when it was settled, names the agent and how it ended).
LEFT_BEHIND = "cw: checkpoint of work left in the worktree"


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    conflicts: list[str] = field(default_factory=list)
    # The commit the target branch points at afterwards.
    commit: str = ""


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


ORIGIN_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"


def phase_branch(phase_id: str) -> str:
    """Phase and task branches live beside `cw/<initiative>`, never under it: git cannot hold both
    `a/b` and `a/b/c`."""
    return f"cw-phase/{safe_id(phase_id, 'phase id')}"


def task_branch(task_id: str) -> str:
    return f"cw-task/{safe_id(task_id, 'task id')}"


def clone_source(url: str) -> str:
    """What `git clone` gets: a URL as given, a local path made absolute. Never an option."""
    if not url or url.startswith("-"):
        raise GitError(f"project url {url!r} cannot be cloned")
    return url if "://" in url else str(Path(url).expanduser().resolve())


# The largest packed-refs file read here rather than by git (a clone of a repository with very
# many branches and tags: git reads it faster).
PACKED_REFS_CAP = 1024 * 1024
_OBJECT_NAME = re.compile(rb"[0-9a-f]{40}([0-9a-f]{24})?")


def ref_in_files(git_dir: Path, ref: str) -> bool | None:
    """Whether `ref` (`refs/heads/...`) is in the orchestrator's own clone, read from its files
    (`ref_target`); None when they do not say it plainly: git is asked then."""
    found = ref_target(git_dir, ref)
    return None if found is None else bool(found)


def ref_target(git_dir: Path, ref: str) -> str | None:
    """The object `ref` (`refs/heads/...`) names in the orchestrator's own clone, read from its
    files the way git stores them (a loose ref file, else a line of `packed-refs`), which only
    the orchestrator's git commands write (no agent reaches the clone); "" when it is not there.
    None when the files do not say it plainly (a symlink, a symbolic or unreadable ref, a
    reftable repository, a large packed-refs): git is asked then."""
    if git_dir.is_symlink() or not git_dir.is_dir() or (git_dir / "reftable").exists():
        return None
    loose = git_dir / ref
    try:
        if loose.is_symlink():
            return None
        if loose.is_file():
            return _object_name(loose.read_bytes()[:200].strip())
        packed = git_dir / "packed-refs"
        if packed.is_symlink() or packed.stat().st_size > PACKED_REFS_CAP:
            return None
        lines = packed.read_bytes().splitlines()
    except FileNotFoundError:
        return ""
    except OSError:
        return None
    wanted = os.fsencode(ref)
    for line in lines:
        name, _, rest = line.partition(b" ")
        if rest == wanted:
            return _object_name(name)
    return ""


def _object_name(text: bytes) -> str | None:
    return text.decode() if _OBJECT_NAME.fullmatch(text) else None


class Workspace:
    def __init__(self, root: Path, max_file_bytes: int = checkpoints.DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = root
        self.repos = root / "repos"
        self.merges = root / "merges"
        # Where tasks' runs work: `tasks/<task id>/`, the same directory for every run of a task.
        self.tasks = root / "tasks"
        # Files over this size stay out of checkpoints.
        self.max_file_bytes = max_file_bytes

    def task_dir(self, task_id: str) -> Path:
        """The directory a task's runs work in, holding one worktree per project: the same path for
        every attempt and resume (Claude Code files its sessions by working directory)."""
        return self.tasks / safe_id(task_id, "task id")

    def repo(self, project_id: str) -> Path:
        return self.repos / safe_id(project_id, "project id")

    def exists(self, project_id: str) -> bool:
        return (self.repo(project_id) / ".git").exists()

    def sync(self, project_id: str, url: str) -> None:
        """Clones the project on first use, fetches it after (from the url stored now)."""
        path = self.repo(project_id)
        source = clone_source(url)
        with repository_lock(path):
            if not (path / ".git").exists():
                shutil.rmtree(path, ignore_errors=True)  # a clone that died half-way
                self.repos.mkdir(parents=True, exist_ok=True)
                git(self.repos, "clone", "--no-checkout", "--quiet", "--", source, str(path))
                return
            if git(path, "remote", "get-url", "origin", check=False).stdout.strip() != source:
                git(path, "remote", "set-url", "origin", source)
            # The url and the refspec are given, never read from the clone's config: a rewritten
            # refspec could map the project's branches onto cw's and prune them.
            git(path, "fetch", "--prune", "--quiet", "--", source, ORIGIN_REFSPEC)

    def ensure_branch(self, project_id: str, branch: str, start_point: str) -> None:
        path = self.repo(project_id)
        with repository_lock(path):
            if not self.branch_exists(project_id, branch):
                git(path, "branch", "--no-track", "--end-of-options", check_branch(branch), start_point)

    def branch_exists(self, project_id: str, branch: str) -> bool:
        """Read from the clone's ref files when they say it plainly (no git process: every start
        asks this of its task, phase and initiative branches), else asked of git."""
        ref = head_ref(branch)
        known = ref_in_files(self.repo(project_id) / ".git", ref)
        if known is not None:
            return known
        return git(self.repo(project_id), "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0

    def commit_of(self, project_id: str, ref: str) -> str:
        """The commit a ref or object name stands for; GitError unless it is a commit here."""
        if ref.startswith("-"):
            raise GitError(f"{ref!r} is not a commit")
        result = git(
            self.repo(project_id),
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{ref}^{{commit}}",
            check=False,
        )
        if result.returncode != 0:
            raise GitError(f"{ref[:64]!r} is not a commit of this project")
        return result.stdout.strip()

    def is_ancestor(self, project_id: str, ancestor: str, descendant: str) -> bool:
        result = git(self.repo(project_id), "merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if result.returncode > 1:
            raise GitError(result.stderr.strip())
        return result.returncode == 0

    def has_commits_beyond(self, project_id: str, base: str, branch: str) -> bool:
        """Work is never thrown away: any error while checking counts as "has commits"."""
        try:
            rev_range = f"{head_ref(base)}..{head_ref(branch)}"
            count = git(self.repo(project_id), "rev-list", "--count", rev_range).stdout.strip()
            return int(count) > 0
        except (GitError, ValueError):
            return True

    def prepare_task_branch(
        self, project_id: str, branch: str, base_branch: str, *, exists: bool | None = None
    ) -> None:
        """Creates the task branch from its base, or moves an empty one up to the base. A branch
        with commits of its own is never moved: the next agent continues on it. `exists`: whether
        the branch exists, when the caller has just looked (no other start of the task runs)."""
        path = self.repo(project_id)
        with repository_lock(path):
            if not (self.branch_exists(project_id, branch) if exists is None else exists):
                git(path, "branch", "--no-track", "--end-of-options", branch, head_ref(base_branch))
            elif (
                not self.has_commits_beyond(project_id, base_branch, branch)
                and self.release_branch(project_id, branch)
                and not self.has_commits_beyond(project_id, base_branch, branch)  # what release kept
            ):
                git(path, "branch", "-f", "--end-of-options", branch, head_ref(base_branch))

    def add_worktree(self, project_id: str, where: Path, branch: str) -> None:
        """The task's own repository of the project at `where`, on the branch (git/agent_repos.py).
        One that is there already is kept (checkpointed first, which sets its repository on the
        branch's tip): the next run continues in it, in the same path. A new one is made without
        the clone's lock (agent_repos.make): one task's clone never waits on another's git work."""
        if where.is_symlink() or (where.exists() and not where.is_dir()):
            where.unlink()  # never followed: no run works through a link
        if where.is_dir():
            self.checkpoint(project_id, where, branch)
            return
        agent_repos.make(self.repo(project_id), where, branch)

    def checkpoint(
        self,
        project_id: str,
        worktree: Path,
        branch: str,
        message: str = LEFT_BEHIND,
        identity: checkpoints.Identity = checkpoints.CW_IDENTITY,
        *,
        fetched: bool = False,
        renew: bool = True,
        keep_unchanged: bool = False,
    ) -> checkpoints.Checkpoint:
        """Whatever is left in the task's directory of the project, committed onto the branch
        (git/checkpoints.py); its repository then set on the branch's new tip (agent_repos.renew,
        after the clone's lock is let go: it only reads the clone), so that the next run starts
        from a clean `git status` on the checkpoint. A settled run's branch was fetched back first
        (forced: the branch is the agent's to move), `fetched`: by the caller, just now, with the
        run over. `renew` False: the caller removes the directory next, or renews it itself.
        `keep_unchanged` (with `fetched`): a repository whose checkpoint committed nothing is not
        renewed now: the branch's tip is the one it holds (just fetched from it), and whatever
        reuses it renews it first (`add_worktree`) while a release removes it; a settlement then
        runs three git processes fewer and removes no `.git`."""
        if worktree.is_symlink():
            return checkpoints.Checkpoint()  # never read through a link
        repo = self.repo(project_id)
        with repository_lock(repo):
            if not fetched:
                # Commits of a run that no settlement fetched back (settled elsewhere, or not yet):
                # taken if they only add to the branch, before its `.git` is renewed.
                agent_repos.fetch_back(repo, worktree, branch, force=False)
            made = checkpoints.checkpoint(
                repo, worktree, branch, message, identity=identity, max_file_bytes=self.max_file_bytes
            )
        if renew and worktree.is_dir() and not (keep_unchanged and fetched and not made.commit):
            agent_repos.renew(repo, worktree, branch, self.root)
        return made

    def follow(self, project_id: str, where: Path, branch: str) -> None:
        """The task's repository set to its branch's tip after the branch moved under it (pulled
        from the shared remote: another machine's attempt; reset to a new base). The caller
        checkpointed it before the branch moved, so its own work is a commit (kept under
        refs/cw-kept/ if the branch went elsewhere); a checkpoint now would commit the old files
        over the new tip."""
        path = self.repo(project_id)
        with repository_lock(path):
            if where.is_symlink() or not where.is_dir():
                return
            agent_repos.renew(path, where, branch, self.root)
            if not checkpoints.is_clean(path, where, branch):
                git(where, "reset", "--quiet", "--hard", head_ref(branch))

    def _task_repos(self, project_id: str, branch: str) -> list[Path]:
        """The task's repositories of this project (`tasks/<task id>/<project>`, borrowing this
        clone's objects) whose branch this is."""
        prefix = task_branch("x")[:-1]
        if not branch.startswith(prefix):
            return []
        try:
            task_dir = self.task_dir(branch[len(prefix) :])
        except ValueError:
            return []
        if not task_dir.is_dir() or task_dir.is_symlink():
            return []
        clone = self.repo(project_id)
        return [where for where in sorted(task_dir.iterdir()) if agent_repos.borrows_from(where, clone)]

    def release_branch(self, project_id: str, branch: str) -> bool:
        """Removes the task's repository (and a worktree of an earlier cw) that has the branch,
        if any, once its branch holds everything in it: its work is checkpointed first, and one
        still holding files the branch lacks (over the checkpoints' size cap) stays. True when
        none holds the branch any more. Only directories inside the workspace are touched."""
        path = self.repo(project_id)
        with repository_lock(path):
            released = all([self._release(project_id, where, branch) for where in self._task_repos(project_id, branch)])
            removed = False
            for listed, checked_out in self._worktrees(project_id).items():
                worktree = Path(listed)
                if checked_out != head_ref(branch) or not self._agents_own(worktree):
                    continue
                if self._release(project_id, worktree, branch, renew=False):
                    git(path, "worktree", "remove", "--force", "--", str(worktree), check=False)
                    removed = True
                else:
                    released = False
            if removed or not all(Path(listed).exists() for listed in self._worktrees(project_id)):
                git(path, "worktree", "prune")
            return released

    def _release(self, project_id: str, where: Path, branch: str, *, renew: bool = True) -> bool:
        """Checkpointed, then removed if the branch holds everything in it (its repository is
        renewed only when it stays: one about to go needs no fresh `.git`)."""
        path = self.repo(project_id)
        if renew:
            self.checkpoint(project_id, where, branch, renew=False)
        else:
            checkpoints.checkpoint(
                path, where, branch, LEFT_BEHIND, identity=checkpoints.CW_IDENTITY, max_file_bytes=self.max_file_bytes
            )
        if not checkpoints.is_clean(path, where, branch):
            log.warning("%s keeps files its branch %s lacks: it stays", where, branch)
            if renew and where.is_dir():
                agent_repos.renew(path, where, branch, self.root)
            return False
        shutil.rmtree(where, ignore_errors=True)
        if where.parent.parent == self.tasks:
            with contextlib.suppress(OSError):
                where.parent.rmdir()  # the task's directory, once nothing is left in it
        return True

    def _worktrees(self, project_id: str) -> dict[str, str]:
        """Each worktree's resolved path and the ref it has checked out ("" when detached)."""
        listing = git(self.repo(project_id), "worktree", "list", "--porcelain").stdout
        found: dict[str, str] = {}
        for block in listing.split("\n\n"):
            lines = dict(line.split(" ", 1) for line in block.splitlines() if " " in line)
            if "worktree" in lines:
                found[str(Path(lines["worktree"]).resolve())] = lines.get("branch", "")
        return found

    def _agents_own(self, worktree: Path) -> bool:
        """Runs' worktrees of earlier versions: under `tasks/` and `agents/`."""
        return within(self.tasks, worktree) or within(self.root / "agents", worktree)

    def is_merged(self, project_id: str, source: str, target: str) -> bool:
        return self.is_ancestor(project_id, head_ref(source), head_ref(target))

    def merge_base(self, project_id: str, first: str, second: str) -> str:
        return git(self.repo(project_id), "merge-base", head_ref(first), head_ref(second)).stdout.strip()

    def merge_worktree(self, project_id: str) -> Path:
        """The orchestrator's own worktree of the project, where merges happen; the caller holds
        the repository's lock."""
        path = self.repo(project_id)
        worktree = self.merges / safe_id(project_id, "project id")
        if not (worktree / ".git").exists():
            shutil.rmtree(worktree, ignore_errors=True)
            git(path, "worktree", "prune")
            worktree.parent.mkdir(parents=True, exist_ok=True)
            git(path, "worktree", "add", "--quiet", "--detach", "--", str(worktree))
        return worktree

    def merge(self, project_id: str, target: str, source: str, message: str) -> MergeResult:
        """`git merge --no-ff source` into target in the orchestrator's own worktree; a conflict is
        aborted, leaving target exactly as it was."""
        path = self.repo(project_id)
        with repository_lock(path):
            worktree = self.merge_worktree(project_id)
            # A forced checkout leaves the worktree and index at the branch's tip, whatever an
            # earlier merge left there (its MERGE_HEAD goes too): no `reset --hard` after it.
            git(worktree, "checkout", "--quiet", "--force", check_branch(target), "--")
            result = git(worktree, "merge", "--no-ff", "--no-edit", "-m", message, head_ref(source), check=False)
            if result.returncode == 0:
                merged = ref_target(path / ".git", head_ref(target))  # the merge commit git just wrote
                return MergeResult(True, commit=merged or self.commit_of(project_id, head_ref(target)))
            conflicts = git(worktree, "diff", "--name-only", "--diff-filter=U").stdout.split()
            git(worktree, "merge", "--abort", check=False)
            git(worktree, "reset", "--quiet", "--hard", head_ref(target))
            if not conflicts:
                raise GitError(f"merge of {source} into {target} failed: {result.stderr.strip()}")
            return MergeResult(False, conflicts)

    def diff(self, project_id: str, base_commit: str, head_commit: str) -> Diff:
        """Between two commits already verified to be this project's (`commit_of`)."""
        path = self.repo(project_id)
        changes = {}
        for line in git(
            path, "diff", "--no-renames", "--name-status", base_commit, head_commit, "--"
        ).stdout.splitlines():
            status, name = line.split("\t", 1)
            changes[name] = status[0]
        files = []
        for line in git(path, "diff", "--no-renames", "--numstat", base_commit, head_commit, "--").stdout.splitlines():
            added, deleted, name = line.split("\t", 2)
            files.append(
                FileStat(
                    name,
                    int(added) if added != "-" else 0,
                    int(deleted) if deleted != "-" else 0,
                    changes.get(name, "M"),
                )
            )
        unified = git(path, "diff", "--no-renames", base_commit, head_commit, "--").stdout
        return Diff(base_commit, head_commit, files, unified)
