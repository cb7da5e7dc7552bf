"""The shared remote: one git repository per project that every orchestrator keeps cw's branches in
(task, phase and initiative branches), so that the loss of a machine loses no pushed commit.

Each orchestrator still works in its own clone (git/workspace.py); the shared remote is a remote of
it named `cw-shared`, whose url is the project's stored `shared_remote`. Before git reads or builds
on a branch, `pull` brings the clone's branch up to the remote's; after a run is settled or a merge
made, `publish` pushes it. Pushes are never forced: a branch in the remote only moves forward, so a
pushed commit is never dropped (across machines, as on one). When the clone and the remote hold
different commits of one branch (a run or a merge this clone made and never pushed, while another
orchestrator pushed its own), the remote's wins and the clone's tip is kept under
`refs/cw-kept/<branch>/<commit>`, never deleted.

A project without `shared_remote` has no shared remote: everything here does nothing (one machine).
Remote urls come from the store, where they pass the same checks as a project's url (never an
option, no remote helper); refs are fully qualified, branch names checked (`head_ref`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cw.store.v1 import project_pb2
from orchestrator_service.git.repo import GitError, check_branch, git, head_ref, repository_lock
from orchestrator_service.git.workspace import Workspace, clone_source

log = logging.getLogger("cw.orchestrator")

REMOTE = "cw-shared"
KEPT = "refs/cw-kept"
# Pushes that lose a race to another orchestrator's, before giving up (the caller retries later).
PUSH_ATTEMPTS = 3

_configured: dict[str, str] = {}
_configured_guard = threading.Lock()


class PushRejected(GitError):
    """The remote's branch holds commits this clone's does not: pull, then decide again."""


@dataclass(frozen=True)
class Kept:
    """A tip of ours that the remote's branch does not hold, kept under its own ref."""

    branch: str
    ref: str


def is_local_path(url: str) -> bool:
    return "://" not in url and ":" not in url.split("/", 1)[0]


def remote_for(base: str, project_id: str) -> str:
    """Where `--shared-remotes BASE` keeps a project: `<BASE>/<project id>.git`."""
    return f"{base.rstrip('/')}/{project_id}.git"


def _tracking(branch: str) -> str:
    return f"refs/remotes/{REMOTE}/{check_branch(branch)}"


def _commit(path: Path, ref: str) -> str:
    result = git(path, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def create_bare(url: str) -> None:
    """The bare repository `remote_for` names under this orchestrator's own `--shared-remotes`,
    made before it is stored as a project's remote. Only there: a remote a person stored is used
    as it is and never created, so no stored string makes the orchestrator write a directory."""
    if is_local_path(url) and not (Path(url) / "HEAD").exists():
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        git(Path(url).parent, "init", "--bare", "--quiet", "--", url)


def _url(project: project_pb2.Project) -> str:
    """Where fetches and pushes go: the stored url itself, never the clone's `cw-shared` remote,
    whose url an agent sharing the clone's config could have pointed elsewhere."""
    return clone_source(project.shared_remote)


def _ensure_remote(ws: Workspace, project: project_pb2.Project) -> Path:
    """The clone's `cw-shared` remote at the project's shared url; returns the clone's path."""
    path = ws.repo(project.id)
    url = clone_source(project.shared_remote)
    with _configured_guard:
        if _configured.get(str(path)) == url:
            return path
    if is_local_path(project.shared_remote) and not (Path(url) / "HEAD").exists():
        raise GitError(f"the shared remote of project {project.name!r} is not a git repository")
    current = git(path, "remote", "get-url", "--", REMOTE, check=False)
    if current.returncode != 0:
        git(path, "remote", "add", "--", REMOTE, url)
    elif current.stdout.strip() != url:
        git(path, "remote", "set-url", "--", REMOTE, url)
    with _configured_guard:
        _configured[str(path)] = url
    return path


def pull(ws: Workspace, project: project_pb2.Project, *branches: str) -> list[Kept]:
    """Brings each branch of the clone up to the remote's: created from it when missing here, moved
    forward when behind, left alone when ahead (ours to push), set to the remote's when the two
    hold different commits (ours kept). Branches the remote lacks are left as they are."""
    if not project.shared_remote or not branches:
        return []
    path = _ensure_remote(ws, project)
    branches = tuple(dict.fromkeys(branches))
    specs = [f"+{head_ref(branch)}*:{_tracking(branch)}*" for branch in branches]
    with repository_lock(path):
        git(path, "fetch", "--quiet", "--no-tags", "--", _url(project), *specs)
        return [kept for branch in branches if (kept := _follow(ws, project.id, path, branch)) is not None]


def _follow(ws: Workspace, project_id: str, path: Path, branch: str) -> Kept | None:
    theirs = _commit(path, _tracking(branch))
    ours = _commit(path, head_ref(branch))
    if not theirs or ours == theirs:
        return None
    if ours and ws.is_ancestor(project_id, theirs, ours):
        return None  # ahead: ours to push
    kept = None
    if ours and not ws.is_ancestor(project_id, ours, theirs) and _only_here(path, branch, ours):
        kept = Kept(branch, f"{KEPT}/{check_branch(branch)}/{ours[:12]}")
        git(path, "update-ref", kept.ref, ours)
        log.warning("branch %s: the shared remote holds other commits; ours are kept as %s", branch, kept.ref)
    git(path, "update-ref", head_ref(branch), theirs, *([ours] if ours else []))
    return kept


def _only_here(path: Path, branch: str, tip: str) -> bool:
    """Whether the branch holds commits no other branch here holds (nor the remote's): work of its
    own, not just an older start than the remote's (a base that has moved on since)."""
    others = git(
        path, "rev-list", "--count", tip, "--not", f"--exclude={check_branch(branch)}", "--branches", "--remotes"
    )
    return int(others.stdout.strip() or 0) > 0


def publish(ws: Workspace, project: project_pb2.Project, branch: str) -> None:
    """Pushes the branch (fast-forward only), unless the remote has it as it is here already.
    PushRejected when the remote's holds commits ours does not: pull, decide again."""
    if not project.shared_remote or not ws.branch_exists(project.id, branch):
        return
    path = _ensure_remote(ws, project)
    ref = head_ref(branch)
    with repository_lock(path):
        if _commit(path, ref) == _commit(path, _tracking(branch)):
            return  # the remote's as last seen (a push updates what we saw)
        result = git(path, "push", "--porcelain", "--", _url(project), f"{ref}:{ref}", check=False)
    if result.returncode != 0:
        said = [line for line in result.stdout.splitlines() if line.startswith("!")] or result.stderr.splitlines()
        raise PushRejected(f"the shared remote refused {branch}: {said[-1].split(chr(9))[-1] if said else 'refused'}")


def keep_remotely(ws: Workspace, project: project_pb2.Project, kept: Kept) -> None:
    """Our commits that lost the branch to another orchestrator's, pushed under their own ref so
    that they outlive this machine too."""
    path = _ensure_remote(ws, project)
    with repository_lock(path):
        git(path, "push", "--quiet", "--", _url(project), f"{kept.ref}:{kept.ref}")


def ensure_shared_branch(
    ws: Workspace, project: project_pb2.Project, branch: str, start_point: str, *, pulled: bool = False
) -> None:
    """The branch as the remote has it, or created here from `start_point` and published (a
    branch two orchestrators create at once ends as the first one pushed). `pulled`: the caller
    has just pulled it."""
    for attempt in range(PUSH_ATTEMPTS):
        if attempt or not pulled:
            pull(ws, project, branch)
        ws.ensure_branch(project.id, branch, start_point)
        try:
            publish(ws, project, branch)
            return
        except PushRejected:
            continue
    raise PushRejected(f"branch {branch} kept changing in the shared remote")


def publish_settled(ws: Workspace, project: project_pb2.Project, branch: str) -> None:
    """A task branch after a run: pushed; if the remote's moved on meanwhile (another attempt of
    the same task ran elsewhere: an orchestrator thought dead), the remote's stays the branch and
    ours is pushed under its own ref, so neither side's commits are lost."""
    for _ in range(PUSH_ATTEMPTS):
        try:
            publish(ws, project, branch)
            return
        except PushRejected:
            for kept in pull(ws, project, branch):
                keep_remotely(ws, project, kept)
    raise PushRejected(f"branch {branch} kept changing in the shared remote")
