"""The OpenCode adapter's answers (clis/opencode.py), and the account files it writes under a run's
config directory, never through a symlink the agent left there (launcher.py, control_files.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator_service.agents import clis, control_files, launcher
from orchestrator_service.agents.clis import opencode
from orchestrator_service.agents.clis.base import RunRequest, SessionOrigin
from orchestrator_service.agents.providers import provider_table

CLI = opencode.OpenCode()


def test_opencode_is_a_built_in_provider_naming_its_own_sessions() -> None:
    assert clis.adapter("opencode") is not None and CLI.session_origin == SessionOrigin.CLI
    assert provider_table()["opencode"].argv == ("opencode",)
    assert str(opencode.AUTH_FILE) in clis.secret_files()


def test_a_new_run_and_a_resume_of_the_session_opencode_named() -> None:
    assert CLI.arguments(RunRequest("ses_abc", resume=False)) == ["run", "--format", "json", "--auto"]
    assert CLI.arguments(RunRequest("ses_abc", resume=True)) == ["run", "--format", "json", "--auto", "-s", "ses_abc"]
    assert CLI.arguments(RunRequest("", resume=True)) == ["run", "--format", "json", "--auto"]


def test_under_an_account_every_xdg_directory_is_the_runs_and_no_inherited_key_remains(tmp_path: Path) -> None:
    inherited = {"PATH": "/usr/bin", "ANTHROPIC_API_KEY": "k", "OPENCODE_CONFIG_CONTENT": "{}", "XDG_DATA_HOME": "/x"}
    env = CLI.environment(inherited, RunRequest("", False, under_account=True, config_dir=tmp_path))
    assert "ANTHROPIC_API_KEY" not in env and "OPENCODE_CONFIG_CONTENT" not in env
    assert env["XDG_CONFIG_HOME"] == str(tmp_path / ".config")
    assert env["XDG_DATA_HOME"] == str(tmp_path / ".local/share")
    assert {name: env[name] for name in opencode.ENVIRONMENT} == opencode.ENVIRONMENT
    assert env["PATH"] == "/usr/bin"


def test_without_an_account_the_environment_stays_but_nothing_is_downloaded() -> None:
    env = CLI.environment({"ANTHROPIC_API_KEY": "k", "HOME": "/home/me"}, RunRequest("", False))
    assert env["ANTHROPIC_API_KEY"] == "k" and env["HOME"] == "/home/me" and "XDG_CONFIG_HOME" not in env
    assert env["OPENCODE_DISABLE_AUTOUPDATE"] == "1"


def test_the_account_files_and_the_plugin_lock(tmp_path: Path) -> None:
    opencode.write_account_files(tmp_path, '{"model": "anthropic/m"}', '{"anthropic": {"type": "api", "key": "k"}}')
    assert json.loads((tmp_path / opencode.CONFIG_FILE).read_text()) == {"model": "anthropic/m"}
    assert (tmp_path / opencode.AUTH_FILE).stat().st_mode & 0o777 == 0o600
    lock = json.loads((tmp_path / opencode.PLUGIN_LOCK_FILE).read_text())
    assert opencode.PLUGIN_PACKAGE in lock["packages"][""]["dependencies"]
    assert (tmp_path / opencode.PLUGIN_MARKER).parent.is_dir()
    assert str(opencode.AUTH_FILE) not in opencode.account_files("{}", "")


def test_no_account_file_is_written_through_a_symlink_the_agent_left(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    (elsewhere / "share/opencode").mkdir(parents=True)
    (home / ".local").symlink_to(elsewhere)
    with pytest.raises(control_files.UnsafeControlFile):
        opencode.write_account_files(home, "{}", '{"anthropic": {"type": "api", "key": "k"}}')
    assert not (elsewhere / "share/opencode/auth.json").exists()


def test_removing_the_key_never_follows_a_symlink(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    (elsewhere / "share/opencode").mkdir(parents=True)
    other = elsewhere / "share/opencode/auth.json"
    other.write_text("someone else's")
    (home / ".local").symlink_to(elsewhere)
    control_files.unlink_beneath(home, opencode.AUTH_FILE)
    assert other.read_text() == "someone else's"


def test_removing_the_key_removes_it_and_a_missing_one_is_no_error(tmp_path: Path) -> None:
    opencode.write_account_files(tmp_path, "{}", "{}")
    control_files.unlink_beneath(tmp_path, opencode.AUTH_FILE)
    assert not (tmp_path / opencode.AUTH_FILE).exists() and (tmp_path / opencode.CONFIG_FILE).exists()
    control_files.unlink_beneath(tmp_path, opencode.AUTH_FILE)
    control_files.unlink_beneath(tmp_path / "absent", opencode.AUTH_FILE)


def test_the_launcher_refuses_a_symlinked_directory_anywhere_on_an_account_files_way(tmp_path: Path) -> None:
    """Not only the file's own directory: `.local` two levels up, left as a symlink by the agent."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    (elsewhere / "share/opencode").mkdir(parents=True)
    other = elsewhere / "share/opencode/auth.json"
    other.write_text("someone else's")
    (home / ".local").symlink_to(elsewhere)
    with pytest.raises(control_files.UnsafeControlFile):
        launcher._write_account_file(home, str(opencode.AUTH_FILE), "key")
    launcher._remove_account_file(home, str(opencode.AUTH_FILE))
    assert other.read_text() == "someone else's"
