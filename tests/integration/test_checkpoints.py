"""Checkpoints on real git: whatever a run left in its task's repository ends on its task branch,
before the repository is reused or removed; files over the cap stay out, listed, and keep their
repository (git/agent_repos.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator_service.git import agent_repos
from orchestrator_service.git.checkpoints import Identity
from orchestrator_service.git.workspace import Workspace, task_branch
from tests.e2e.cluster import make_git_repo

PROJECT = "p1"
BRANCH = task_branch("t1")
AGENT = Identity("tidy-jackal", "tidy-jackal@agents.cw.invalid")


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    files = {"README.md": "# app\n", "old.txt": "old\n", ".gitignore": "*.log\n"}
    origin = make_git_repo(tmp_path / "user" / "app", files)
    workspace = Workspace(tmp_path / "workspace", max_file_bytes=1000)
    workspace.sync(PROJECT, str(origin))
    workspace.ensure_branch(PROJECT, "main", "refs/remotes/origin/main")
    workspace.prepare_task_branch(PROJECT, BRANCH, "main")
    return workspace


def _worktree(ws: Workspace) -> Path:
    where = ws.task_dir("t1") / "app"
    ws.add_worktree(PROJECT, where, BRANCH)
    return where


def _files_at(ws: Workspace, ref: str) -> set[str]:
    return set(_git(ws.repo(PROJECT), "ls-tree", "-r", "--name-only", ref).split())


def test_a_checkpoint_takes_every_change_but_ignored_and_oversized_files(ws: Workspace) -> None:
    where = _worktree(ws)
    (where / "README.md").write_text("# changed\n")
    (where / "old.txt").unlink()
    (where / "src").mkdir()
    (where / "src" / "new.py").write_text("print('new')\n")
    (where / "-rf").write_text("a name that reads as an option\n")
    (where / ":(glob)*").write_text("a name that reads as pathspec magic\n")
    (where / "build.log").write_text("ignored by the repository\n")
    (where / "big.bin").write_bytes(b"x" * 1001)

    made = ws.checkpoint(PROJECT, where, BRANCH, "checkpoint: tidy-jackal, crashed", AGENT)

    assert made.commit and _git(where, "rev-parse", "HEAD").strip() == made.commit
    assert _files_at(ws, made.commit) == {"README.md", ".gitignore", "src/new.py", "-rf", ":(glob)*"}
    assert [(change.path, change.size) for change in made.left_out] == [("big.bin", 1001)]
    author = _git(where, "log", "-1", "--format=%an <%ae>|%s").strip()
    assert author == "tidy-jackal <tidy-jackal@agents.cw.invalid>|checkpoint: tidy-jackal, crashed"
    assert _git(where, "status", "--porcelain").splitlines() == ["?? big.bin"]
    assert ws.checkpoint(PROJECT, where, BRANCH).commit == ""  # nothing new: no empty commit


def test_a_run_that_broke_its_repository_cannot_keep_its_files_out(ws: Workspace) -> None:
    """The attack: a run that dies mid-`git add` leaves index.lock; one that detaches HEAD hides
    its commit from the branch. Both used to make the next attempt's worktree lose the work."""
    where = _worktree(ws)
    _git(where, "checkout", "-q", "--detach")
    (where / ".git" / "index.lock").write_text("")
    (where / "work.txt").write_text("uncommitted\n")

    made = ws.checkpoint(PROJECT, where, BRANCH)

    assert "work.txt" in _files_at(ws, f"refs/heads/{BRANCH}") and made.taken == ["work.txt"]
    assert _git(where, "symbolic-ref", "HEAD").strip() == f"refs/heads/{BRANCH}"
    assert _git(where, "status", "--porcelain") == ""


def test_the_agents_commits_are_fetched_back_then_checkpointed_and_nothing_it_configured_runs(
    ws: Workspace, tmp_path: Path
) -> None:
    """The agent's repository is its own: its commits come back, what it left uncommitted is
    checkpointed on top of them, and the hooks, fsmonitor and refs it planted in its `.git` are
    neither run nor kept (the next run gets a fresh `.git` on the checkpoint)."""
    where = _worktree(ws)
    (where / "done.txt").write_text("committed by the agent\n")
    _git(where, "add", "done.txt")
    _git(where, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "the agent's work")
    agent_commit = _git(where, "rev-parse", "HEAD").strip()
    (where / "half.txt").write_text("left uncommitted\n")
    ran = tmp_path / "ran"
    with (where / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = touch {ran}\n\thooksPath = hooks\n")
    hook = where / ".git" / "hooks" / "reference-transaction"
    hook.parent.mkdir(exist_ok=True)  # a task's repository comes without git's template files
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    _git(where, "branch", "planted")

    assert agent_repos.fetch_back(ws.repo(PROJECT), where, BRANCH)
    made = ws.checkpoint(PROJECT, where, BRANCH, "checkpoint", AGENT)

    assert _git(ws.repo(PROJECT), "rev-parse", f"{made.commit}^").strip() == agent_commit
    assert {"done.txt", "half.txt"} <= _files_at(ws, f"refs/heads/{BRANCH}")
    assert not ran.exists()
    assert _git(where, "rev-parse", "HEAD").strip() == made.commit
    assert _git(where, "status", "--porcelain") == ""
    assert _git(where, "branch", "--list", "planted") == "" and not hook.exists()
    assert "planted" not in _git(ws.repo(PROJECT), "branch", "--list")


def test_the_next_run_continues_in_the_same_worktree_from_the_checkpoint(ws: Workspace) -> None:
    where = _worktree(ws)
    (where / "half.txt").write_text("half done\n")
    ws.prepare_task_branch(PROJECT, BRANCH, "main")  # the next attempt: the branch is not reset
    again = _worktree(ws)
    assert again == where and (where / "half.txt").read_text() == "half done\n"
    assert "half.txt" in _files_at(ws, f"refs/heads/{BRANCH}")


def test_a_worktree_is_removed_only_when_its_branch_holds_everything(ws: Workspace) -> None:
    where = _worktree(ws)
    (where / "big.bin").write_bytes(b"x" * 2000)
    (where / "small.txt").write_text("small\n")
    assert ws.release_branch(PROJECT, BRANCH) is False
    assert (where / "big.bin").exists() and "small.txt" in _files_at(ws, f"refs/heads/{BRANCH}")
    (where / "big.bin").unlink()
    assert ws.release_branch(PROJECT, BRANCH) is True
    assert not where.exists()


def test_a_directory_git_forgot_is_checkpointed_before_it_goes(ws: Workspace) -> None:
    where = _worktree(ws)
    shutil.rmtree(where / ".git")  # the run deleted its repository's .git
    (where / "kept.txt").write_text("kept\n")
    _worktree(ws)
    assert (where / "kept.txt").read_text() == "kept\n"
    assert "kept.txt" in _files_at(ws, f"refs/heads/{BRANCH}")
    assert _git(where, "status", "--porcelain") == ""


def test_commits_no_settlement_fetched_are_kept_when_the_next_run_starts(ws: Workspace) -> None:
    """A run whose settlement never fetched its branch back (its orchestrator died, the run was
    settled elsewhere): its commits still reach the branch before its `.git` is renewed."""
    where = _worktree(ws)
    (where / "late.txt").write_text("committed, never fetched\n")
    _git(where, "add", "late.txt")
    _git(where, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "late work")
    late = _git(where, "rev-parse", "HEAD").strip()
    _worktree(ws)  # the next run
    assert _git(ws.repo(PROJECT), "merge-base", "--is-ancestor", late, f"refs/heads/{BRANCH}") == ""
    assert (
        _git(where, "rev-parse", "HEAD").strip() == _git(ws.repo(PROJECT), "rev-parse", f"refs/heads/{BRANCH}").strip()
    )


def test_a_settled_repository_is_renewed_when_its_checkpoint_committed_else_by_its_next_run(ws: Workspace) -> None:
    """A settlement whose checkpoint commits nothing leaves the repository as the run left it (its
    tip is the branch's); the next run's start renews it before anything runs in it."""
    where = _worktree(ws)
    (where / "done.txt").write_text("committed by the agent\n")
    _git(where, "add", "done.txt")
    _git(where, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "the agent's work")
    _git(where, "branch", "planted")
    assert agent_repos.fetch_back(ws.repo(PROJECT), where, BRANCH)

    made = ws.checkpoint(PROJECT, where, BRANCH, "checkpoint", AGENT, fetched=True, keep_unchanged=True)
    assert not made.commit and _git(where, "branch", "--list", "planted") != ""
    _worktree(ws)  # the next run
    assert _git(where, "branch", "--list", "planted") == ""
    assert _git(where, "status", "--porcelain") == ""

    (where / "half.txt").write_text("left uncommitted\n")
    _git(where, "branch", "planted")
    made = ws.checkpoint(PROJECT, where, BRANCH, "checkpoint", AGENT, fetched=True, keep_unchanged=True)
    assert made.commit and _git(where, "branch", "--list", "planted") == ""
    assert _git(where, "rev-parse", "HEAD").strip() == made.commit
