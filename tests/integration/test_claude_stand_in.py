"""The claude provider's command run under the real shim against the stand-in `claude`, and the run
read back as the orchestrator reads it (no services: the agent process and its files only)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator_service.agents import claude_outcome, supervisor
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.sandbox import running_as_root
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.dispatch import AgentOutcome

STAND_IN = Path(__file__).resolve().parents[1] / "fixtures" / "agents" / "claude"


@dataclass
class Agent:
    root: Path
    in_sandbox: bool = True
    session: str = ""

    def __post_init__(self) -> None:
        self.files = AgentFiles(self.root / "agent")
        self.files.control.mkdir(parents=True)
        self.state = self.root / "state"
        self.state.mkdir()
        config = self.files.config_dir
        config.mkdir()
        (config / ".credentials.json").write_text('{"claudeAiOauth": {}}')
        (config / ".claude.json").write_text('{"oauthAccount": {"emailAddress": "dev@example.com"}}')
        self.session = str(uuid.uuid4())

    def run(self, prompt: str, resume: bool = False) -> AgentOutcome:
        """Starts the stand-in under the shim as the launcher does, waits, and settles the run."""
        if resume:
            self.files.archive_session()
        self.files.prompt.write_text(prompt)
        provider = Provider("claude", (str(STAND_IN),), self.in_sandbox)
        base = {key: value for key, value in os.environ.items() if key != "IS_SANDBOX"}
        env = provider.environment(
            {
                **base,
                "CW_TEST_STATE_DIR": str(self.state),
                "CW_TASK_ID": "task-1",
                "CW_SIGNAL_FILE": str(self.files.signal),
                "CW_SESSION_ID": self.session,
                "CLAUDE_CONFIG_DIR": str(self.files.config_dir),
            }
        )
        shim = supervisor.spawn(self.files, provider.command(self.session, resume), env)
        assert shim.wait(60) == 0
        observed = supervisor.observe(self.files, 0)
        outcome = claude_outcome.run_outcome("claude", self.files, observed.exit_code, datetime.now(UTC))
        self.session = outcome.session_id or self.session
        return outcome

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.state / "claude-calls.jsonl").read_text().splitlines()]


def script(**plan: Any) -> str:
    return f"# Task: t\n\nscript: {json.dumps(plan)}\n"


def test_a_prompt_starting_with_dashes_and_over_300_kib_arrives_on_stdin_intact(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    prompt = "--help is how this description starts\n" + script(result="read it") + "é" * (300 * 1024)
    outcome = agent.run(prompt)
    assert (outcome.kind, outcome.summary) == ("done", "read it")
    [call] = agent.calls()
    assert call["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert call["argv"][-2:] == ["--session-id", agent.session]
    assert not any("help is how" in argument for argument in call["argv"])


def test_resumes_report_new_sessions_and_an_unknown_one_says_so(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    first = agent.session
    asked = agent.run(script(questions_rounds=2, result="finished"))
    assert asked.kind == "questions" and asked.session_id == first
    again = agent.run("Answers to your questions:\n- q1: tabs\n", resume=True)
    assert again.kind == "questions" and again.session_id not in ("", first)
    done = agent.run("Answers to your questions:\n- q2: yes\n", resume=True)
    assert (done.kind, done.summary) == ("done", "finished") and done.session_id not in (first, again.session_id)
    resumed = [call["argv"][call["argv"].index("--resume") + 1] for call in agent.calls()[1:]]
    assert resumed == [first, again.session_id]
    agent.session = str(uuid.uuid4())
    unknown = agent.run("Answers to your questions:\n- q3: no\n", resume=True)
    assert unknown.unknown_session and unknown.kind == "error"


def test_limit_forms_error_results_and_a_spliced_line(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    limited = agent.run(script(limit="You've hit your limit · resets 4pm (America/Los_Angeles)", limit_times=3))
    assert limited.kind == "rate_limited" and 0 < limited.retry_after_seconds <= 24 * 3600
    resets_at = int(datetime.now(UTC).timestamp()) + 7200
    agent.session = str(uuid.uuid4())
    evented = agent.run(script(limit={"resetsAt": resets_at}, limit_times=3))
    assert evented.kind == "rate_limited" and 7100 < evented.retry_after_seconds <= 7200
    agent.session = str(uuid.uuid4())
    failed = agent.run(script(error_result={"subtype": "error_max_turns"}, error_times=5))
    assert (failed.kind, failed.error) == ("error", "Claude Code stopped: error_max_turns")
    agent.session = str(uuid.uuid4())
    spliced = agent.run(script(splice=True, result="mended"))
    assert (spliced.kind, spliced.summary) == ("done", "mended")
    # The output really holds a line cut in two: its tail does not start an event.
    assert sum(1 for line in agent.files.output.read_text().splitlines() if not line.startswith("{")) == 1


@pytest.mark.skipif(not running_as_root(), reason="Claude Code's root guard needs uid 0")
def test_as_root_it_runs_only_with_is_sandbox(tmp_path: Path) -> None:
    refused = Agent(tmp_path / "refused", in_sandbox=False).run(script(result="never"))
    assert refused.kind == "crash" and "cannot be used with root/sudo privileges" in refused.error
    sandboxed = Agent(tmp_path / "sandboxed")
    assert sandboxed.run(script(result="ran")).summary == "ran"
    assert sandboxed.calls()[0]["is_sandbox"] == "1"
