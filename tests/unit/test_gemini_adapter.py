"""The Gemini CLI's adapter (clis/gemini.py): its command line, environment and account files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator_service.agents import clis, launcher
from orchestrator_service.agents.clis import gemini
from orchestrator_service.agents.clis.base import RunRequest
from orchestrator_service.agents.providers import provider_table

ADAPTER = gemini.Gemini()


def test_it_is_built_in_and_its_key_file_is_removed_after_every_run() -> None:
    assert clis.adapter("gemini") is not None and gemini.KEY_FILE in clis.secret_files()
    assert provider_table()["gemini"].argv == ("gemini",)


def test_a_new_run_names_its_session_and_a_resume_continues_it() -> None:
    new = ADAPTER.arguments(RunRequest("s-1", False))
    assert new[:2] == ["-p", ""] and new[-2:] == ["--session-id", "s-1"]
    assert new[2:4] == ["-o", "stream-json"] and "yolo" in new and "--skip-trust" in new
    assert ADAPTER.arguments(RunRequest("s-1", True))[-2:] == ["--resume", "s-1"]


def test_a_provider_command_keeps_its_own_arguments_first() -> None:
    provider = provider_table(["gemini=/opt/gemini -m gemini-2.5-pro"])["gemini"]
    assert provider.command("s", False)[:3] == ["/opt/gemini", "-m", "gemini-2.5-pro"]


def test_under_an_account_no_inherited_credential_and_its_own_home(tmp_path: Path) -> None:
    inherited = {
        "GEMINI_API_KEY": "orchestrators",
        "GOOGLE_API_KEY": "g",
        "GOOGLE_GEMINI_BASE_URL": "http://x",
        "A": "1",
    }
    env = ADAPTER.environment(inherited, RunRequest("s", False, under_account=True, config_dir=tmp_path))
    assert env == {"GOOGLE_GEMINI_BASE_URL": "http://x", "A": "1", "GEMINI_CLI_HOME": str(tmp_path)}
    assert ADAPTER.environment(inherited, RunRequest("s", False)) == inherited


def test_account_files_hold_cw_settings_under_the_accounts_and_its_key() -> None:
    own = {"model": {"name": "gemini-2.5-flash"}, "security": {"auth": {"selectedType": "oauth-personal"}}}
    files = ADAPTER.account_files(json.dumps(own), " AIzaSyTestKey_123-abc \n")
    written = json.loads(files[gemini.SETTINGS_FILE])
    assert written["model"] == {"name": "gemini-2.5-flash"}
    assert written["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert written["telemetry"] == {"enabled": False} and written["general"]["maxAttempts"] == gemini.MAX_ATTEMPTS
    assert written["advanced"]["ignoreLocalEnv"] is True
    assert files[gemini.KEY_FILE] == "GEMINI_API_KEY='AIzaSyTestKey_123-abc'\n"


@pytest.mark.parametrize("config_json", ["not json", "[1, 2]", '"text"', ""])
def test_settings_that_are_not_an_object_leave_cws_alone(config_json: str) -> None:
    written = json.loads(ADAPTER.account_files(config_json, "key")[gemini.SETTINGS_FILE])
    assert written == json.loads(gemini.settings(""))


@pytest.mark.parametrize("key", ["a'b", "key\nGOOGLE_GEMINI_BASE_URL=http://evil", "two words", "x" * 600])
def test_what_is_not_one_key_writes_no_key_line(key: str) -> None:
    assert gemini.KEY_FILE not in ADAPTER.account_files("", key)


def test_no_secrets_write_nothing() -> None:
    assert ADAPTER.account_files("", "") == {}


def test_the_key_file_is_written_into_its_directory_and_removed_never_through_a_symlink(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    launcher._write_account_file(config, gemini.KEY_FILE, "GEMINI_API_KEY='k'\n")
    assert (config / ".gemini" / ".env").read_text() == "GEMINI_API_KEY='k'\n"
    assert (config / ".gemini").stat().st_mode & 0o777 == 0o700
    launcher._remove_account_file(config, gemini.KEY_FILE)
    assert not (config / ".gemini" / ".env").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("theirs")
    (config / ".gemini").rmdir()
    (config / ".gemini").symlink_to(elsewhere)
    launcher._remove_account_file(config, gemini.KEY_FILE)
    assert (elsewhere / ".env").read_text() == "theirs"
    with pytest.raises(OSError):
        launcher._write_account_file(config, gemini.KEY_FILE, "GEMINI_API_KEY='k'\n")
    assert (elsewhere / ".env").read_text() == "theirs"
