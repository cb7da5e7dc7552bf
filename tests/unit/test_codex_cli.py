"""The Codex adapter (clis/codex.py): its command lines, environment and account files, and its
reading of `codex exec --json` output recorded from the real CLI 0.171 against tests/fake_openai.py
(tests/fixtures/transcripts/codex_*.jsonl), garbage included."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cw.store.v1 import account_pb2, agent_pb2
from orchestrator_service.agents import clis, launcher, stream_json, supervisor
from orchestrator_service.agents.claude_outcome import claude_outcome as outcome_of
from orchestrator_service.agents.clis import codex
from orchestrator_service.agents.clis.base import SessionOrigin
from orchestrator_service.agents.providers import provider_table
from orchestrator_service.agents.supervisor import AgentFiles
from tests.unit.claude_transcripts import TRANSCRIPTS

# When the transcripts were recorded (TZ=UTC): the limits' resets are relative to it.
NOW = datetime(2026, 12, 7, 23, 8, tzinfo=UTC)
THREAD = "01a252c3-b564-7170-b2ca-44716b2a464d"


def run_of(name: str) -> stream_json.RunSummary:
    return codex.summarize_file(TRANSCRIPTS / f"codex_{name}.jsonl", NOW)


def test_a_finished_run_reports_its_thread_and_its_last_message() -> None:
    run = run_of("success")
    assert run.session_id == THREAD and run.succeeded and run.result is not None
    assert run.result.text == "Wrote made.txt." and run.limit is None and not run.unknown_session
    outcome = outcome_of(0, None, run, NOW, "Codex")
    assert (outcome.kind, outcome.summary, outcome.session_id) == ("done", "Wrote made.txt.", THREAD)


def test_a_resumed_run_keeps_its_thread() -> None:
    run = run_of("resumed")
    assert run.session_id == THREAD and run.result is not None and run.result.text == "Resumed and answered."


def test_a_usage_limit_names_its_reset_and_rests_the_account() -> None:
    run = run_of("usage_limit")
    assert run.limit is not None and run.limit.reset_at == datetime(2026, 12, 8, 2, 38, tzinfo=UTC)
    outcome = outcome_of(1, None, run, NOW, "Codex")
    assert outcome.kind == "rate_limited" and outcome.session_id == run.session_id
    assert outcome.retry_after_seconds == (datetime(2026, 12, 8, 2, 38, tzinfo=UTC) - NOW).total_seconds()
    days = run_of("usage_limit_days").limit
    assert days is not None and days.reset_at == datetime(2026, 12, 10, 23, 8, tzinfo=UTC)


def test_a_limit_without_a_reset_rests_the_default_time() -> None:
    for name in ("usage_limit_later", "too_many_requests"):
        run = run_of(name)
        assert run.limit is not None and run.limit.reset_at is None, name
        assert outcome_of(1, None, run, NOW, "Codex").kind == "rate_limited"


def test_a_same_day_reset_is_a_time_of_today_in_the_clis_zone() -> None:
    """Codex leaves the date out when the reset falls on the same local day."""
    message = (
        "You\u2019ve hit your usage limit. Visit https://chatgpt.com/codex/settings/usage or try again at 11:45 PM"
    )
    assert codex.reset_of(message, NOW) == datetime(2026, 12, 7, 23, 45, tzinfo=UTC)
    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    assert codex.reset_of("try again at 1:05 AM.", paris) == datetime(2026, 12, 8, 0, 5, tzinfo=UTC)
    for broken in (
        "try again at 13:00 PM.",
        "try again at Foo 3rd, 2026 1:00 AM.",
        "try again at Feb 30th, 2026 1:00 AM.",
    ):
        assert codex.reset_of(broken, NOW) is None


def test_a_refused_credential_is_its_own_outcome() -> None:
    run = run_of("unauthorized")
    assert run.result is not None and run.result.api_error_status == 401 and run.limit is None
    outcome = outcome_of(1, None, run, NOW, "Codex")
    assert outcome.kind == "credentials_refused" and outcome.error.startswith("unexpected status 401 Unauthorized")


def test_a_server_error_is_a_failed_attempt_with_its_message() -> None:
    outcome = outcome_of(1, None, run_of("server_error"), NOW, "Codex")
    assert outcome.kind == "error" and "high demand" in outcome.error


def test_resuming_an_unknown_thread_is_an_unknown_session() -> None:
    run = run_of("resume_unknown")
    assert run.unknown_session and run.result is None and "no rollout found" in run.last_plain_line
    assert outcome_of(1, None, run, NOW, "Codex").unknown_session


def test_the_agents_own_words_never_count() -> None:
    """An agent message or a command's output quoting a limit, a 401 or a resume failure is no
    refusal; only the CLI's error lines are."""
    said = "You\u2019ve hit your usage limit ... try again at 1:00 AM; 401 Unauthorized; no rollout found"
    lines = [
        json.dumps({"type": "thread.started", "thread_id": THREAD}),
        json.dumps({"type": "turn.started"}),
        json.dumps({"type": "item.completed", "item": {"type": "command_execution", "aggregated_output": said}}),
        json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": said}}),
        json.dumps({"type": "turn.completed", "usage": {}}),
    ]
    run = codex.summarize_lines([line.encode() for line in lines], NOW)
    assert run.succeeded and run.limit is None and not run.unknown_session
    assert run.result is not None and run.result.text == said


def test_a_thread_id_that_is_no_id_is_not_a_session() -> None:
    for thread in ("--help", "", "a b", "x" * 200, 7):
        line = json.dumps({"type": "thread.started", "thread_id": thread}).encode()
        assert codex.summarize_lines([line], NOW).session_id == ""


def test_a_cut_short_run_has_no_result(tmp_path: Path) -> None:
    text = (TRANSCRIPTS / "codex_success.jsonl").read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(text[: text.index(b'"agent_message"') + 5])
    run = codex.summarize_file(cut, NOW)
    assert run.session_id == THREAD and run.result is None
    assert outcome_of(None, None, run, NOW, "Codex").kind == "crash"
    assert codex.summarize_file(tmp_path / "missing.jsonl", NOW) == stream_json.RunSummary()


def test_output_starts_at_the_run_offset(tmp_path: Path) -> None:
    output = tmp_path / "output.jsonl"
    first = (TRANSCRIPTS / "codex_success.jsonl").read_bytes()
    output.write_bytes(first + (TRANSCRIPTS / "codex_unauthorized.jsonl").read_bytes())
    assert codex.summarize_file(output, NOW, 0).succeeded is False
    second = codex.summarize_file(output, NOW, len(first))
    assert THREAD not in second.session_ids and second.result is not None and second.result.api_error_status == 401


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(codex.summarize_lines(stream_json.read_lines(io.BytesIO(data)), NOW), stream_json.RunSummary)


EVENTISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["thread.started", "turn.started", "item.completed", "turn.completed", "turn.failed", "error"]),
    st.dictionaries(st.sampled_from(["thread_id", "item", "usage", "error", "message"]), EVENTISH),
)
def test_events_of_any_shape_never_raise(kind: str, fields: dict[str, object]) -> None:
    line = json.dumps({"type": kind, **fields}).encode()
    assert isinstance(codex.summarize_lines([line, line[: len(line) // 2]], NOW), stream_json.RunSummary)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_refusal_message_never_raises(message: str) -> None:
    lines = [json.dumps({"type": "turn.failed", "error": {"message": f"try again at {message}"}}).encode()]
    assert isinstance(codex.summarize_lines(lines, NOW), stream_json.RunSummary)


# ---- the command line, the environment, the account's files --------------------------------------


def test_codex_is_built_in_and_names_its_own_session() -> None:
    assert clis.adapter("codex") is not None and clis.adapter("codex").session_origin == SessionOrigin.CLI  # type: ignore[union-attr]
    table = provider_table(["codex=/opt/codex/bin/codex"])
    fresh = table["codex"].command("cw-picked", resume=False)
    assert fresh == [
        "/opt/codex/bin/codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "-",
    ]
    assert "cw-picked" not in fresh  # the CLI names the thread
    resumed = table["codex"].command(THREAD, resume=True)
    assert resumed[1:3] == ["exec", "resume"] and resumed[-2:] == [THREAD, "-"]
    assert provider_table()["codex"].argv == ("codex",)


def test_a_run_under_an_account_uses_its_codex_home_and_no_inherited_key(tmp_path: Path) -> None:
    inherited = {"PATH": "/bin", "OPENAI_API_KEY": "sk-orchestrator", "CODEX_API_KEY": "k", "IS_SANDBOX": "1"}
    provider = provider_table(in_sandbox=True)["codex"]
    env = provider.environment(inherited, under_account=True, config_dir=tmp_path)
    assert env == {"PATH": "/bin", "CODEX_HOME": str(tmp_path)}
    assert provider.environment(inherited) == {
        "PATH": "/bin",
        "OPENAI_API_KEY": "sk-orchestrator",
        "CODEX_API_KEY": "k",
    }


def test_an_accounts_secrets_become_config_toml_and_auth_json() -> None:
    cli = codex.Codex()
    toml = 'model = "gpt-5"\n'
    assert cli.account_files(toml, "sk-proj-abc\n") == {
        "config.toml": toml,
        "auth.json": json.dumps({"OPENAI_API_KEY": "sk-proj-abc"}),
    }
    login = json.dumps({"tokens": {"access_token": "a"}, "last_refresh": "2026-12-01T00:00:00Z"})
    assert cli.account_files("", login) == {"auth.json": login}
    assert cli.account_files("", "") == {}
    assert "auth.json" in clis.secret_files() and ".credentials.json" in clis.secret_files()


def test_reset_far_in_the_past_still_rests_a_minute() -> None:
    run = run_of("usage_limit")
    later = NOW + timedelta(days=30)
    assert outcome_of(1, None, run, later, "Codex").retry_after_seconds == 60.0


def test_the_launcher_gives_a_codex_run_its_accounts_files_and_takes_the_key_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-orchestrator")
    files = AgentFiles(tmp_path / "agent")
    agent = agent_pb2.Agent(id="a", name="n", task_id="t", session_id=THREAD, provider="codex")
    secrets = account_pb2.GetAccountSecretsResponse(config_json='model = "gpt-5"\n', credentials="sk-account")
    launch = launcher.Launch(agent, files, provider_table()["codex"], "execute", "p", resume=True, secrets=secrets)
    env = launcher.environment(launch)
    assert env["CODEX_HOME"] == str(files.config_dir) and "OPENAI_API_KEY" not in env
    assert "CLAUDE_CONFIG_DIR" not in env
    supervisor.make_private_dirs(files)
    files.config_dir.mkdir(mode=0o700)
    for name, text in codex.Codex().account_files(secrets.config_json, secrets.credentials).items():
        (files.config_dir / name).write_text(text)
    launcher.remove_credentials(files)
    assert sorted(path.name for path in files.config_dir.iterdir()) == ["config.toml"]
