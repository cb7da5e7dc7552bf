"""Git runs nothing a repository or an agent configured (README.md, "Git runs nothing a repository
configured"), written as the attack.

An agent's worktree shares its clone's config, so an agent can write into it: `core.fsmonitor`, a
`filter` driver named by a committed `.gitattributes`, `diff.external`, a textconv, a merge driver,
hooks, a remote's upload-pack. Each points at a program that leaves a marker file. The
orchestrator's own git work (fetching, branches, later agents' worktrees, merges, merge branches with
conflicts, diffs, delivery) must run none of them, and a diff must show the commits' real hunks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cw.store.v1 import project_pb2
from orchestrator_service.git import conflicts, delivery, shared
from orchestrator_service.git.repo import (
    ConfigNames,
    GitError,
    git,
    hardened_environment,
    includes_others,
    overrides_for,
    unchanged_since_read,
)
from orchestrator_service.git.workspace import Workspace
from tests.e2e.cluster import make_git_repo

PROJECT = "p1"


def _git(cwd: Path, *args: str) -> str:
    """git as an agent (or the test) runs it: with the repository's own config."""
    run = ["git", "-c", "user.name=agent", "-c", "user.email=agent@test", *args]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(run, cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout.strip()


def _program(tmp_path: Path, name: str, body: str = "") -> str:
    """A program that leaves `markers/<name>` when run (then does what `body` says)."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    path = tmp_path / f"{name}.sh"
    path.write_text(f"#!/bin/sh\ntouch '{markers / name}'\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _markers(tmp_path: Path) -> list[str]:
    markers = tmp_path / "markers"
    return sorted(path.name for path in markers.iterdir()) if markers.exists() else []


def _hostile_config(repo: Path, tmp_path: Path) -> None:
    """What an agent writes into the clone's config, directly, as it could from its worktree."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-checkout", "post-merge", "pre-push", "reference-transaction", "commit-msg"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch '{tmp_path / 'markers' / hook}'\n")
        (hooks / hook).chmod(0o755)
    settings = {
        "core.fsmonitor": _program(tmp_path, "fsmonitor", "exit 1"),
        "core.hooksPath": str(hooks),
        "filter.evil.clean": _program(tmp_path, "clean", "cat"),
        "filter.evil.smudge": _program(tmp_path, "smudge", "cat"),
        "filter.evil.process": _program(tmp_path, "process", "exit 1"),
        "filter.evil.required": "true",
        "diff.external": _program(tmp_path, "external-diff"),
        "diff.evil.textconv": _program(tmp_path, "textconv"),
        "diff.evil.command": _program(tmp_path, "diff-command"),
        "merge.evil.driver": _program(tmp_path, "merge-driver", "exit 0"),
        "merge.default": "evil",
        "remote.origin.uploadpack": _program(tmp_path, "upload-pack", 'exec git-upload-pack "$@"'),
        "remote.origin.receivepack": _program(tmp_path, "receive-pack", 'exec git-receive-pack "$@"'),
        "core.sshCommand": _program(tmp_path, "ssh"),
        "core.pager": _program(tmp_path, "pager"),
        "color.diff": "always",
        "diff.noprefix": "true",
    }
    for key, value in settings.items():
        _git(repo, "config", key, value)
    _git(repo, "config", "--add", "credential.helper", _program(tmp_path, "credential"))


def _commit_on(ws: Workspace, branch: str, start: str, files: dict[str, str], tmp_path: Path) -> None:
    """A commit on `branch`, as an agent makes it in its worktree (the test's own git, no config)."""
    repo = ws.repo(PROJECT)
    where = tmp_path / f"scratch-{branch.replace('/', '-')}"
    if not ws.branch_exists(PROJECT, branch):
        _git(repo, "branch", branch, start)
    _git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", str(where), branch)
    for name, content in files.items():
        (where / name).write_text(content)
    _git(where, "add", "-A")
    _git(where, "-c", "core.hooksPath=/dev/null", "commit", "-qm", f"on {branch}")
    _git(repo, "worktree", "remove", "--force", str(where))


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Workspace, Path]:
    user = make_git_repo(tmp_path / "user")
    ws = Workspace(tmp_path / "workspace")
    ws.sync(PROJECT, str(user))
    ws.ensure_branch(PROJECT, "main", "refs/remotes/origin/main")
    return ws, user


def test_the_orchestrator_s_git_runs_nothing_an_agent_configured(
    workspace: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, user = workspace
    repo = ws.repo(PROJECT)
    ws.ensure_branch(PROJECT, "phase", "refs/heads/main")
    gitattributes = "* filter=evil diff=evil merge=evil\n"
    _commit_on(ws, "task", "main", {".gitattributes": gitattributes, "shared.txt": "line one\ntask line\n"}, tmp_path)
    _commit_on(ws, "other", "main", {".gitattributes": gitattributes, "shared.txt": "line one\nother line\n"}, tmp_path)
    _hostile_config(repo, tmp_path)

    ws.sync(PROJECT, str(user))  # fetch: upload-pack, ssh
    ws.prepare_task_branch(PROJECT, "cw-task/later", "task")
    later = tmp_path / "workspace" / "agents" / "later" / "project"
    ws.add_worktree(PROJECT, later, "cw-task/later")  # a later agent's worktree: checkout, smudge, hooks
    merged = ws.merge(PROJECT, "phase", "task", "Merge task")  # merge worktree: fsmonitor, hooks, drivers
    conflicted = ws.merge(PROJECT, "phase", "other", "Merge other")
    conflicts.prepare_merge_branch(ws, PROJECT, "merging", "other", "phase", message="conflicts left")
    with_markers = conflicts.files_with_markers(ws, PROJECT, "phase", "merging")
    diff = ws.diff(PROJECT, ws.commit_of(PROJECT, "refs/heads/main"), merged.commit)
    delivery.push_branch(ws, PROJECT, "phase")  # push: receive-pack, pre-push, credentials

    assert _markers(tmp_path) == []
    assert (later / "shared.txt").read_text() == "line one\ntask line\n"
    assert merged.merged and not conflicted.merged and conflicted.conflicts == ["shared.txt"]
    assert with_markers == ["shared.txt"]
    merge_text = _git(repo, "show", "refs/heads/merging:shared.txt")
    assert "<<<<<<< " in merge_text and "task line" in merge_text and "other line" in merge_text
    # The diff of the commits, byte for byte: real hunks, plain prefixes, no colour.
    assert "\x1b[" not in diff.unified
    assert "--- a/shared.txt\n+++ b/shared.txt\n@@ -1 +1,2 @@\n line one\n+task line\n" in diff.unified
    assert "+* filter=evil diff=evil merge=evil\n" in diff.unified
    assert sorted(stat.path for stat in diff.files) == [".gitattributes", "shared.txt"]
    assert _git(user, "rev-parse", "refs/heads/phase") == merged.commit


def test_a_rewritten_fetch_refspec_cannot_prune_cw_s_branches(workspace: tuple[Workspace, Path]) -> None:
    """The clone's `remote.origin.fetch` mapped onto `refs/heads/*`: a fetch with --prune would
    have deleted every branch cw made that the project's repository does not have."""
    ws, user = workspace
    repo = ws.repo(PROJECT)
    ws.ensure_branch(PROJECT, "cw-task/work", "refs/heads/main")
    _git(repo, "config", "--replace-all", "remote.origin.fetch", "+refs/heads/*:refs/heads/*")
    ws.sync(PROJECT, str(user))
    assert ws.branch_exists(PROJECT, "cw-task/work")


@pytest.mark.parametrize(
    ("setting", "command"),
    [("core.worktree", "status"), ("url./elsewhere.insteadOf", "fetch"), ("remote.origin.pushurl", "push")],
)
def test_a_config_git_cannot_be_told_to_ignore_is_refused(
    workspace: tuple[Workspace, Path], tmp_path: Path, setting: str, command: str
) -> None:
    ws, _ = workspace
    repo = ws.repo(PROJECT)
    _git(repo, "config", setting, str(tmp_path / "elsewhere"))
    with pytest.raises(GitError, match="which cw does not follow"):
        git(repo, command, "--", "origin")


def test_drivers_are_overridden_by_name_and_no_name_splits_a_setting() -> None:
    names = ["filter.a=b.clean", "merge.x.y.driver", "diff.external", "core.bare"]
    overrides = dict(overrides_for(names, "merge"))
    assert overrides["filter.a=b.clean"] == "" and overrides["filter.a=b.required"] == "false"
    assert overrides["merge.x.y.driver"].startswith("git merge-file ")
    assert not any(key.startswith(("diff.", "core.")) for key in overrides)


def test_git_variables_in_the_orchestrator_s_environment_are_not_followed(
    workspace: tuple[Workspace, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = workspace
    ws.ensure_branch(PROJECT, "phase", "refs/heads/main")
    _commit_on(ws, "task", "main", {"shared.txt": "line one\ntask line\n"}, tmp_path)
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", _program(tmp_path, "external-diff"))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.fsmonitor=" + _program(tmp_path, "fsmonitor") + "'")
    diff = ws.diff(PROJECT, ws.commit_of(PROJECT, "refs/heads/main"), ws.commit_of(PROJECT, "refs/heads/task"))
    assert ws.merge(PROJECT, "phase", "task", "Merge task").merged
    assert _markers(tmp_path) == [] and "+task line\n" in diff.unified


def test_a_repointed_shared_remote_is_not_followed(workspace: tuple[Workspace, Path], tmp_path: Path) -> None:
    """The clone's `cw-shared` url pointed at a repository of the agent's: pulls and pushes still
    go to the project's stored shared remote, so no branch of cw's takes the agent's commits."""
    ws, _ = workspace
    shared_url = str(tmp_path / "shared.git")
    _git(tmp_path, "init", "-q", "--bare", shared_url)
    project = project_pb2.Project(id=PROJECT, name="app", shared_remote=shared_url)
    ws.ensure_branch(PROJECT, "cw/feature", "refs/heads/main")
    shared.publish(ws, project, "cw/feature")
    mine = ws.commit_of(PROJECT, "refs/heads/cw/feature")
    evil = make_git_repo(tmp_path / "evil", {"evil.txt": "the agent's\n"})
    _git(evil, "branch", "cw/feature")
    _git(ws.repo(PROJECT), "remote", "set-url", "cw-shared", str(evil))
    shared.pull(ws, project, "cw/feature")
    assert ws.commit_of(PROJECT, "refs/heads/cw/feature") == mine
    assert _git(Path(shared_url), "rev-parse", "refs/heads/cw/feature") == mine


def test_the_environment_keeps_only_the_operator_s_way_to_remotes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_SSH", "/opt/my ssh")
    monkeypatch.setenv("GIT_WORK_TREE", "/elsewhere")
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    env = hardened_environment([("filter.x.clean", "")])
    assert env["GIT_SSH_COMMAND"] == "'/opt/my ssh'" and "GIT_WORK_TREE" not in env
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull and env["GIT_CONFIG_NOSYSTEM"] == "1"
    count = int(env["GIT_CONFIG_COUNT"])
    assert (env[f"GIT_CONFIG_KEY_{count - 1}"], env[f"GIT_CONFIG_VALUE_{count - 1}"]) == ("filter.x.clean", "")


def test_config_names_are_read_again_once_the_config_changes(tmp_path: Path) -> None:
    """The names are kept between commands (a git process each), never past a change of any
    config file: git rewrites its config through a new file, an agent in place (its size, mtime
    or ctime then moves)."""
    repo = make_git_repo(tmp_path / "repo")
    names = ConfigNames(racy_seconds=0)
    assert "filter.evil.clean" not in names.of(repo)
    assert names.kept(repo)
    _git(repo, "config", "filter.evil.clean", "touch marker")
    assert "filter.evil.clean" in names.of(repo)
    with (repo / ".git" / "config").open("a") as config:
        config.write('[merge "evil"]\n\tdriver = touch marker\n')
    assert "merge.evil.driver" in names.of(repo)


def test_a_worktree_s_config_names_follow_its_clone_s_config(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    _git(repo, "worktree", "add", "--quiet", "--detach", str(tmp_path / "merges"))
    names = ConfigNames(racy_seconds=0)
    assert "filter.evil.clean" not in names.of(tmp_path / "merges")
    assert names.kept(tmp_path / "merges")
    _git(repo, "config", "filter.evil.clean", "touch marker")
    assert "filter.evil.clean" in names.of(tmp_path / "merges")


def test_a_config_that_includes_other_files_is_read_every_time(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    included = tmp_path / "included.cfg"
    included.write_text("[core]\n\tbare = false\n")
    _git(repo, "config", "include.path", str(included))
    names = ConfigNames(racy_seconds=0)
    names.of(repo)
    assert not names.kept(repo)
    included.write_text('[filter "evil"]\n\tclean = touch marker\n')
    assert "filter.evil.clean" in names.of(repo)


def test_names_read_while_or_just_after_their_config_was_written_are_not_kept() -> None:
    second = 1_000_000_000
    old = (1, 10, 5 * second, 5 * second)
    assert unchanged_since_read([old, None], [old, None], 10 * second)
    assert not unchanged_since_read([old, None], [(1, 10, 5 * second, 9 * second), None], 10 * second)
    assert not unchanged_since_read([old], [(1, 10, 5 * second, int(9.95 * second))], 10 * second)
    fresh = (1, 10, int(9.95 * second), int(9.95 * second))
    assert not unchanged_since_read([fresh], [fresh], 10 * second)
    assert includes_others(["core.bare", "includeIf.gitdir:/x/.path"]) and not includes_others(["core.bare"])
