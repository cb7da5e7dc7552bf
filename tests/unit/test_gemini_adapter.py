"""The Gemini CLI's adapter (clis/gemini.py): its command line, environment and account files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator_service.agents import claude_outcome, clis, launcher, shim
from orchestrator_service.agents.clis import gemini
from orchestrator_service.agents.clis.base import RunRequest
from orchestrator_service.agents.providers import provider_table
from orchestrator_service.dispatch import AgentOutcome

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


# ---- what a run's outcome is -------------------------------------------------------------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
NOW = datetime(2026, 12, 7, 23, 45, tzinfo=UTC)


def outcome(name: str, exit_code: int | None, signal_text: str | None = None) -> AgentOutcome:
    run = ADAPTER.summarize(TRANSCRIPTS / f"gemini_{name}.jsonl", 0, NOW)
    return claude_outcome.claude_outcome(exit_code, signal_text, run, NOW, ADAPTER.label)


@pytest.mark.parametrize(("name", "status"), [("bad_key", 400), ("unauthorized", 401), ("forbidden", 403)])
def test_a_refused_key_is_refused_whatever_its_exit_read_as(name: str, status: int) -> None:
    """The CLI exits with the HTTP status mod 256; in the sandbox 144, 145, 147 read as signals."""
    exit_code = shim.sandboxed_returncode(status % 256)
    assert exit_code < 0  # read as a death by signal: the shim records no exit code
    assert outcome(name, None).kind == "credentials_refused"
    assert outcome(name, status % 256).kind == "credentials_refused"
    assert outcome(name, None).error.startswith("Gemini API: ")


def test_an_exhausted_quota_rests_the_account() -> None:
    limited = outcome("rate_limit_daily", 429 % 256)
    assert limited.kind == "rate_limited" and limited.retry_after_seconds is not None
    assert limited.retry_after_seconds == pytest.approx(
        3600 - (NOW - datetime(2026, 12, 7, 23, 32, 18, 396000, tzinfo=UTC)).total_seconds()
    )
    assert outcome("rate_limit_daily", None).kind == "rate_limited"


def test_success_is_done_with_the_answer_and_a_kill_without_a_result_is_a_crash() -> None:
    done = outcome("tool_use", 0)
    assert done.kind == "done" and done.summary == "Wrote hello.txt and staged it."
    assert outcome("tool_use", None).kind == "crash"
    assert outcome("unknown_session", 42).unknown_session
    # A signal file a run left is not read when the process was killed.
    assert outcome("tool_use", None, '{"status": "done", "summary": "x"}').kind == "crash"
