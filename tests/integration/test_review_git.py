"""The git side of review and repair on real repositories: a merge task's branch with the conflict
markers committed, the check that none are left, and delivery into a user's non-bare repository
(never its checked-out branch, never over commits the user made)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator_service.git import conflicts, delivery
from orchestrator_service.git.workspace import Workspace
from tests.e2e.cluster import make_git_repo

PROJECT = "p1"


def _git(cwd: Path, *args: str) -> str:
    run = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(run, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _commit_on(ws: Workspace, branch: str, start: str, files: dict[str, str], tmp_path: Path) -> None:
    """A commit on `branch` (made from `start`) in the workspace clone, through a scratch worktree."""
    repo = ws.repo(PROJECT)
    where = tmp_path / f"scratch-{branch.replace('/', '-')}"
    if not ws.branch_exists(PROJECT, branch):
        _git(repo, "branch", branch, start)
    _git(repo, "worktree", "add", "-q", str(where), branch)
    for name, content in files.items():
        (where / name).write_text(content)
    _git(where, "add", "-A")
    _git(where, "commit", "-qm", f"on {branch}")
    _git(repo, "worktree", "remove", "--force", str(where))


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Workspace, Path]:
    user = make_git_repo(tmp_path / "user")
    ws = Workspace(tmp_path / "workspace")
    ws.sync(PROJECT, str(user))
    ws.ensure_branch(PROJECT, "main", "refs/remotes/origin/main")
    return ws, user


def test_a_merge_branch_holds_both_sides_and_its_markers(workspace: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, _ = workspace
    ws.ensure_branch(PROJECT, "target", "refs/heads/main")
    _commit_on(ws, "source", "main", {"shared.txt": "source side\n"}, tmp_path)
    _commit_on(ws, "target", "target", {"shared.txt": "target side\n"}, tmp_path)
    conflicts.prepare_merge_branch(ws, PROJECT, "merging", "source", "target", message="merge with conflicts left")
    repo = ws.repo(PROJECT)
    parents = _git(repo, "rev-list", "--parents", "-n", "1", "refs/heads/merging").split()[1:]
    assert parents == [_git(repo, "rev-parse", "refs/heads/source"), _git(repo, "rev-parse", "refs/heads/target")]
    text = _git(repo, "show", "refs/heads/merging:shared.txt")
    assert "<<<<<<< " in text and "source side" in text and "target side" in text
    assert conflicts.files_with_markers(ws, PROJECT, "target", "merging") == ["shared.txt"]
    assert _git(repo, "rev-parse", "refs/heads/source") != _git(repo, "rev-parse", "refs/heads/merging")
    conflicts.prepare_merge_branch(ws, PROJECT, "merging", "target", "source", message="again")  # kept as it is
    assert "<<<<<<< " in _git(repo, "show", "refs/heads/merging:shared.txt")
    _commit_on(ws, "merging", "merging", {"shared.txt": "source side\ntarget side\n"}, tmp_path)
    assert conflicts.files_with_markers(ws, PROJECT, "target", "merging") == []
    assert ws.merge(PROJECT, "target", "merging", "resolved").merged


def test_delivery_pushes_a_branch_and_never_over_the_user_s(workspace: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, user = workspace
    _commit_on(ws, "cw/feature", "main", {"feature.txt": "one"}, tmp_path)
    main_before = _git(user, "rev-parse", "refs/heads/main")
    pushed = delivery.push_branch(ws, PROJECT, "cw/feature")
    assert pushed.commit == _git(user, "rev-parse", "refs/heads/cw/feature")
    assert _git(user, "rev-parse", "refs/heads/main") == main_before and _git(user, "status", "--porcelain") == ""
    diff = delivery.initiative_diff(ws, PROJECT, "cw/feature", "main")
    assert diff is not None and [f.path for f in diff.files] == ["feature.txt"]

    _git(user, "checkout", "-q", "cw/feature")
    with pytest.raises(delivery.DeliveryRefused) as checked_out:
        delivery.push_branch(ws, PROJECT, "cw/feature")
    assert checked_out.value.reason == "BRANCH_CHECKED_OUT"
    (user / "mine.txt").write_text("the user's own work")
    _git(user, "add", "mine.txt")
    _git(user, "commit", "-qm", "mine")
    _git(user, "checkout", "-q", "main")
    _commit_on(ws, "cw/feature", "cw/feature", {"feature.txt": "two"}, tmp_path)
    with pytest.raises(delivery.DeliveryRefused) as diverged:
        delivery.push_branch(ws, PROJECT, "cw/feature")
    assert diverged.value.reason == "PUSH_REJECTED"
    assert _git(user, "show", "refs/heads/cw/feature:mine.txt") == "the user's own work"
