"""The outcome of a claude run, the root guard, and the provider's command and environment."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orchestrator_service.agents import claude_outcome, sandbox, shim
from orchestrator_service.agents.claude_outcome import claude_outcome as outcome_of
from orchestrator_service.agents.providers import Provider, provider_table
from orchestrator_service.agents.stream_json import FinalResult, Limit, RunSummary, summarize_file
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind
from tests.unit.claude_transcripts import LIMIT_RESETS, NOW, SESSION, TRANSCRIPTS

DONE = json.dumps({"status": "done", "summary": "from the signal file"})


def run_of(name: str) -> RunSummary:
    return summarize_file(TRANSCRIPTS / name, NOW)


def test_success_text_is_the_summary_and_the_session_rides_along() -> None:
    outcome = outcome_of(0, None, run_of("success.jsonl"), NOW)
    assert outcome.kind == OutcomeKind.DONE and outcome.summary.startswith("Created app/schema.sql")
    assert outcome.session_id == SESSION and outcome.exit_code == 0


def test_the_signal_file_is_the_stronger_word() -> None:
    for name in ("success.jsonl", "limit_hit_your_limit.jsonl", "error_max_turns.jsonl"):
        outcome = outcome_of(1, DONE, run_of(name), NOW)
        assert (outcome.kind, outcome.summary, outcome.exit_code) == ("done", "from the signal file", 1)
        assert outcome.session_id == SESSION
    questions = json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "?"}]})
    assert outcome_of(0, questions, run_of("success.jsonl"), NOW).kind == OutcomeKind.QUESTIONS


@pytest.mark.parametrize(("name", "reset"), LIMIT_RESETS)
def test_a_limit_rests_the_account_until_its_reset(name: str, reset: datetime) -> None:
    outcome = outcome_of(1, None, run_of(name), NOW)
    assert outcome.kind == OutcomeKind.RATE_LIMITED and outcome.retry_after_seconds == (reset - NOW).total_seconds()
    assert outcome.rest_until == reset  # exactly: the settlement's later clock cannot move it
    assert outcome.error  # the evidence, for the agent's record


def test_limit_rest_without_a_reset_and_with_one_already_past() -> None:
    unknown = RunSummary(limit=Limit(None, "Rate limit reached"))
    assert outcome_of(1, None, unknown, NOW).retry_after_seconds == claude_outcome.DEFAULT_LIMIT_REST_SECONDS
    past = RunSummary(limit=Limit(NOW - timedelta(hours=1), "Limit reached"))
    assert outcome_of(1, None, past, NOW).retry_after_seconds == claude_outcome.MIN_LIMIT_REST_SECONDS


def test_a_limit_does_not_undo_a_successful_run() -> None:
    run = RunSummary(result=FinalResult("success", False, "all done"), limit=Limit(NOW, "rate_limit_event five_hour"))
    assert outcome_of(0, None, run, NOW).kind == OutcomeKind.DONE


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("error_max_turns.jsonl", "Claude Code stopped: error_max_turns"),
        ("error_during_execution.jsonl", "error_during_execution: API Error: 500"),
        ("error_result_text.jsonl", "API Error: 400 The prompt is too long for this model."),
    ],
)
def test_an_error_result_is_a_failed_attempt_with_its_reason(name: str, reason: str) -> None:
    for exit_code in (0, 1):
        outcome = outcome_of(exit_code, None, run_of(name), NOW)
        assert outcome.kind == OutcomeKind.ERROR and outcome.error.startswith(reason) and not outcome.unknown_session


def test_an_unknown_session_is_reported_as_such() -> None:
    outcome = outcome_of(1, None, run_of("resume_unknown_session.jsonl"), NOW)
    assert outcome.unknown_session and outcome.kind == OutcomeKind.ERROR and outcome.session_id == ""


def test_crashes_say_what_the_cli_printed() -> None:
    refused = outcome_of(1, None, run_of("root_refused.jsonl"), NOW)
    assert refused.kind == OutcomeKind.CRASH and "root/sudo privileges" in refused.error
    assert outcome_of(None, DONE, run_of("success.jsonl"), NOW).kind == OutcomeKind.CRASH
    cut = outcome_of(137, None, run_of("cut_short.jsonl"), NOW)
    assert (cut.kind, cut.error, cut.session_id) == ("crash", "exited with 137", SESSION)


def test_exit_zero_with_nothing_said_is_done_without_summary() -> None:
    assert outcome_of(0, None, RunSummary(), NOW) == AgentOutcome(OutcomeKind.DONE, exit_code=0)


def test_reported_texts_are_clipped_to_fit_events() -> None:
    run = RunSummary(result=FinalResult("success", False, "é" * 40_000))
    summary = outcome_of(0, None, run, NOW).summary
    assert len(summary.encode()) <= claude_outcome.MAX_REPORTED_BYTES and summary.endswith("...")


def test_fresh_session_prompt_holds_the_task_questions_and_answers() -> None:
    prompt = claude_outcome.fresh_session_prompt(
        "# Task: t\n\nDo it.\n", [{"id": "q1", "question": "Tabs or spaces?"}], {"q1": "tabs", "q2": "yes"}
    )
    assert prompt.startswith("# Task: t\n\nDo it.\n")
    assert "- q1 (Tabs or spaces?): tabs" in prompt and "- q2: yes" in prompt


def _finished_run(tmp_path: Path, transcript: str, offset_from: str | None = None) -> AgentFiles:
    files = AgentFiles(tmp_path)
    earlier = (TRANSCRIPTS / offset_from).read_bytes() if offset_from else b""
    files.output.write_bytes(earlier + (TRANSCRIPTS / transcript).read_bytes())
    shim.write_atomically(tmp_path / shim.IDENTITY_FILE, {"pid": 1, "start_time": 1, "output_offset": len(earlier)})
    return files


def test_run_outcome_reads_the_latest_run_of_the_files(tmp_path: Path) -> None:
    files = _finished_run(tmp_path, "resume_unknown_session.jsonl", offset_from="success.jsonl")
    assert claude_outcome.run_outcome("claude", files, 1, NOW).unknown_session
    files.signal.parent.mkdir()
    files.signal.write_text(DONE)
    assert claude_outcome.run_outcome("claude", files, 1, NOW).summary == "from the signal file"


def test_run_outcome_leaves_other_providers_to_classify_exit(tmp_path: Path) -> None:
    files = _finished_run(tmp_path, "success.jsonl")
    assert claude_outcome.run_outcome("scripted", files, 0, NOW) == AgentOutcome(OutcomeKind.DONE, exit_code=0)
    assert claude_outcome.run_outcome("claude", files, 0, NOW).session_id == SESSION


def test_wall_clock_resets_count_from_when_the_output_was_written(tmp_path: Path) -> None:
    """Settled two hours late (an orchestrator that was down), "resets 4pm" still means today's."""
    files = _finished_run(tmp_path, "limit_hit_your_limit.jsonl")
    os.utime(files.output, (NOW.timestamp(), NOW.timestamp()))
    late = NOW + timedelta(hours=5)  # 5pm in Los Angeles: past the reset, so the minimum rest
    assert claude_outcome.run_outcome("claude", files, 1, late).retry_after_seconds == 60.0
    assert claude_outcome.run_outcome("claude", files, 1, NOW).retry_after_seconds == 4 * 3600


def test_root_guard() -> None:
    assert sandbox.claude_blocked_reason(is_root=False, in_sandbox=False) is None
    assert sandbox.claude_blocked_reason(is_root=True, in_sandbox=True) is None
    reason = sandbox.claude_blocked_reason(is_root=True, in_sandbox=False)
    assert reason is not None and "IS_SANDBOX=1" in reason and "--agents-in-sandbox" in reason
    refusal = sandbox.startup_refusal("claude", is_root=True, in_sandbox=False)
    assert refusal is not None and "\n" not in refusal and "as root" in refusal
    assert sandbox.startup_refusal("scripted", is_root=True, in_sandbox=False) is None
    assert sandbox.startup_refusal("claude", is_root=True, in_sandbox=True) is None
    assert sandbox.startup_refusal("claude", is_root=False, in_sandbox=False) is None


def test_claude_environment_says_is_sandbox_only_with_the_flag() -> None:
    inherited = {"PATH": "/bin", "IS_SANDBOX": "yes"}
    assert provider_table()["claude"].environment(inherited) == {"PATH": "/bin", "CLAUDE_CODE_MAX_RETRIES": "1"}
    assert provider_table(in_sandbox=True)["claude"].environment(inherited)["IS_SANDBOX"] == "1"
    overridden = provider_table(["claude=/opt/claude --model x", "mine=run"], in_sandbox=True)
    assert overridden["claude"] == Provider("claude", ("/opt/claude", "--model", "x"), in_sandbox=True)
    assert overridden["mine"].environment(inherited) == {"PATH": "/bin"}  # inherited: never passed on
    assert provider_table(["mine=run"])["mine"].environment(inherited) == {"PATH": "/bin"}


def test_a_run_under_an_account_gets_no_credential_from_the_orchestrators_environment() -> None:
    """The orchestrator's key would override every account's .credentials.json: it is not passed on."""
    inherited = {
        "PATH": "/bin",
        "ANTHROPIC_API_KEY": "sk-ant-api03-orchestrator",
        "ANTHROPIC_AUTH_TOKEN": "token",
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-orchestrator",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
    }
    claude = provider_table(claude_max_retries=3)["claude"]
    assert claude.environment(inherited, under_account=True) == {
        "PATH": "/bin",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
        "CLAUDE_CODE_MAX_RETRIES": "3",
    }
    # With no account, the environment's key is what the run uses (README, "Running with Claude Code").
    assert claude.environment(inherited)["ANTHROPIC_API_KEY"] == "sk-ant-api03-orchestrator"
    # Another provider's environment is its own business.
    mine = provider_table(["mine=run"])["mine"]
    assert mine.environment(inherited, under_account=True) == inherited


def test_the_prompt_is_never_an_argument() -> None:
    command = provider_table()["claude"].command("sid", resume=False)
    assert command == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        "--session-id",
        "sid",
    ]


@pytest.mark.parametrize("name", ["invalid_api_key.jsonl", "not_logged_in.jsonl", "v2_1_328_invalid_api_key.jsonl"])
def test_a_refused_credential_is_its_own_outcome(name: str) -> None:
    """Recorded from the real CLI against a 401 (tests/fixtures/fake_anthropic.py)."""
    run = summarize_file(TRANSCRIPTS / name, NOW)
    outcome = outcome_of(1, None, run, NOW)
    assert outcome.kind == OutcomeKind.CREDENTIALS_REFUSED and outcome.exit_code == 1
    assert outcome.error in ("Invalid API key · Fix external API key", "Not logged in · Please run /login")
    assert outcome.session_id == run.session_id != ""
