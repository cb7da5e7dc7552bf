"""A branch looked up in the clone's ref files (no git process) says what `git rev-parse
--verify` says, loose or packed, and leaves to git what the files do not say plainly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator_service.git.workspace import Workspace, ref_in_files, ref_target
from tests.e2e.cluster import make_git_repo

PROJECT = "p1"


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout


def _by_git(repo: Path, ref: str) -> bool:
    command = ["git", "rev-parse", "--verify", "--quiet", ref]
    looked = subprocess.run(command, cwd=repo, capture_output=True, check=False)
    return looked.returncode == 0


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    origin = make_git_repo(tmp_path / "user" / "app", {"README.md": "# app\n"})
    workspace = Workspace(tmp_path / "workspace")
    workspace.sync(PROJECT, str(origin))
    workspace.ensure_branch(PROJECT, "main", "refs/remotes/origin/main")
    return workspace


def test_loose_packed_and_missing_branches_read_as_git_reads_them(ws: Workspace) -> None:
    repo = ws.repo(PROJECT)
    _git(repo, "branch", "cw-task/a", "main")
    _git(repo, "branch", "cw-task/b", "main")
    _git(repo, "pack-refs", "--all")
    _git(repo, "branch", "cw-task/c", "main")  # loose, beside the packed ones
    _git(repo, "branch", "-D", "cw-task/b")  # gone from packed-refs too
    for branch in ("main", "cw-task/a", "cw-task/b", "cw-task/c", "cw-task/never", "cw-task"):
        ref = f"refs/heads/{branch}"
        assert ref_in_files(repo / ".git", ref) is _by_git(repo, ref), branch
        assert ws.branch_exists(PROJECT, branch) is _by_git(repo, ref), branch
        named = _git(repo, "rev-parse", "--verify", "--quiet", ref).strip() if _by_git(repo, ref) else ""
        assert ref_target(repo / ".git", ref) == named, branch
    assert (repo / ".git" / "refs" / "heads" / "cw-task").is_dir()  # a directory is no loose ref


def test_what_the_files_do_not_say_plainly_is_left_to_git(ws: Workspace) -> None:
    repo = ws.repo(PROJECT)
    _git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    assert ref_in_files(repo / ".git", "refs/heads/alias") is None
    assert ws.branch_exists(PROJECT, "alias")
    broken = repo / ".git" / "refs" / "heads" / "broken"
    broken.write_text("not an object name\n")
    assert ref_in_files(repo / ".git", "refs/heads/broken") is None
    assert not ws.branch_exists(PROJECT, "broken")
    (repo / ".git" / "refs" / "heads" / "linked").symlink_to(repo / ".git" / "refs" / "heads" / "main")
    assert ref_in_files(repo / ".git", "refs/heads/linked") is None
    assert ref_in_files(repo / ".git" / "missing", "refs/heads/main") is None
