"""The real OpenCode CLI run through cw, offline, in cw's sandbox, against the fake Anthropic API
the tests serve (tests/fixtures/fake_anthropic.py), each account's opencode.json naming the fake as
the `anthropic` provider's baseURL and its auth.json holding the account's key
(orchestrator_service/agents/clis/opencode.py says what cw sets).

The CLI is the pinned version `make agent-clis` installs into .cache/agent-clis/ (CW_TEST_OPENCODE);
without it these tests fail, as `make test` would.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.test_real_claude import accounts_by_id, diff_files, plain_task, waiting
from tests.fixtures import fake_anthropic, record_opencode
from tests.fixtures.fake_anthropic import FakeAnthropic, Reply, ToolCall, Turn, fingerprint, serving

ROOT = Path(__file__).resolve().parents[2]
REAL_OPENCODE = Path(
    os.environ.get("CW_TEST_OPENCODE") or ROOT / ".cache/agent-clis/opencode/node_modules/.bin/opencode"
)
# A key in the shell the orchestrator starts from: no run under an account may use it.
ORCHESTRATOR_KEY = "sk-ant-api03-orchestrator-key-never-an-accounts"
_TASK_NAME = re.compile(r"# Task: (?P<name>\S+)")


def task_of(turn: Turn) -> str:
    found = _TASK_NAME.search(turn.prompt)
    return found.group("name") if found else ""


def write(turn: Turn, name: str, content: str) -> ToolCall:
    """OpenCode's `write` tool, the file where the CLI says it works."""
    return ToolCall("write", {"filePath": f"{turn.working_directory}/{name}", "content": content})


def bash(command: str) -> ToolCall:
    return ToolCall("bash", {"command": command, "description": "run a command"})


@contextmanager
def real_opencode_cluster(
    root: Path, fake: FakeAnthropic, accounts: dict[str, str], monkeypatch: pytest.MonkeyPatch, max_agents: int = 2
) -> Iterator[Cluster]:
    """Both services as processes; opencode is the real CLI and the default provider; `accounts`
    maps each account's email to its key (created in that order: the first is handed out first)."""
    assert REAL_OPENCODE.exists(), f"{REAL_OPENCODE} is missing: run `make agent-clis`"
    home = root / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ANTHROPIC_API_KEY", ORCHESTRATOR_KEY)  # the orchestrator inherits it
    running = Cluster(root, [f"opencode={REAL_OPENCODE}"], max_agents)
    try:
        running.start_store()
        for order, (email, key) in enumerate(accounts.items()):
            account = account_pb2.Account(
                email=email,
                provider="opencode",
                config_json=json.dumps(record_opencode.opencode_json(fake.base_url)),
                credentials=json.dumps({"anthropic": {"type": "api", "key": key}}),
                sort_order=order,
            )
            running.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))
        running.start_orchestrator()
        yield running
    finally:
        running.close()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with serving(FakeAnthropic(label=task_of)) as served:
        yield served


def settled(c: Cluster, task_id: str) -> agent_pb2.Agent | None:
    """The task's only agent once its run is over and its usage read."""
    [agent] = c.agents_of(task_id)
    return agent if agent.status not in (agent_pb2.AGENT_STATUS_RUNNING,) and agent.usage.input_tokens else None


def test_a_task_completes_with_its_file_in_the_diff_its_summary_and_the_usage_the_api_reported(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCode writes a file with its `write` tool and commits nothing; its last text is the
    summary; every model request carried the account's key (never the orchestrator's); the agent's
    usage is the sum of what the fake API reported for each request, exactly."""
    replies = [
        Reply(input_tokens=120, output_tokens=9, cache_read_tokens=4, cache_write_tokens=30),
        Reply(text="Wrote hello.txt.", input_tokens=150, output_tokens=7, cache_read_tokens=34),
    ]

    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            tools = (write(turn, "hello.txt", "hello from opencode\n"),)
            return Reply(tools=tools, **{k: getattr(replies[0], k) for k in USAGE_FIELDS})
        return replies[1]

    fake.script = script
    with real_opencode_cluster(tmp_path, fake, {"dev@example.com": "sk-ant-api03-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Hello", c.project()), "P")
        task = plain_task(c, phase, "hello")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.summary == "Wrote hello.txt." and done.retry_count == 0
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=60)
        assert diff_files(c, phase.id) == {"hello.txt": "hello from opencode\n"}
        agent = wait_for("the agent's usage", partial(settled, c, task.id), timeout=60)
        assert agent.session_id.startswith("ses_")  # OpenCode's own, read from its output
        assert (
            agent.usage.input_tokens,
            agent.usage.output_tokens,
            agent.usage.cache_read_tokens,
            agent.usage.cache_write_tokens,
        ) == tuple(sum(getattr(reply, name) for reply in replies) for name in USAGE_FIELDS)
        assert agent.usage.cost_usd > 0  # OpenCode's price for the model, as it reported it
        conversation = [request for request in fake.recorded() if request.conversation]
        assert [request.step for request in conversation] == [0, 1]
        assert {request.fingerprint for request in fake.recorded()} == {fingerprint("sk-ant-api03-dev")}
        # OpenCode installed nothing at run time: its plugin's node_modules holds only cw's marker.
        [installed] = tmp_path.rglob(".config/opencode/node_modules")
        assert [path.name for path in installed.iterdir()] == [".cw"] and not list(tmp_path.rglob(".npm"))
        c.assert_invariants()


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def test_questions_answered_resume_the_session_opencode_named(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent asks through the signal file (its `bash` tool); the answer resumes OpenCode's own
    session (`-s`, the id read from its first run's output): the earlier turns are sent again."""
    questions = json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "Tabs or spaces?"}]})
    resumed_with: list[Turn] = []

    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            return Reply(tools=(bash(f"printf '%s' '{questions}' > \"$CW_SIGNAL_FILE\""),))
        if turn.step == 1:
            return Reply(text="I asked my question.")
        resumed_with.append(turn)
        said = "four spaces" if "four spaces" in turn.latest else "no answer seen"
        return Reply(text=f"Used {said}.")

    fake.script = script
    with real_opencode_cluster(tmp_path, fake, {"dev@example.com": "sk-ant-api03-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = wait_for("the agent's question", partial(waiting, c, task.id), timeout=180)
        assert json.loads(asking.pending_questions)[0]["question"] == "Tabs or spaces?"
        assert asking.session_id.startswith("ses_")
        answer = orch.QuestionAnswer(question_id="q1", answer="four spaces")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=asking.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.summary == "Used four spaces." and done.retry_count == 0
        [agent] = c.agents_of(task.id)
        assert agent.session_id == asking.session_id
        assert resumed_with and resumed_with[0].step == 2  # the question's two turns came first
        c.assert_invariants()


def test_a_429_rests_its_account_until_the_reset_and_another_account_finishes_without_an_attempt(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCode retries the 429 itself (five times, `retry-after-ms` apart), then ends with the
    API's error, its response headers with it: the account rests until the reset they name."""
    limited = "sk-ant-api03-limited"
    reset = int(time.time()) + 3 * 3600

    def script(turn: Turn) -> Reply:
        if turn.credential == limited:
            return fake_anthropic.rate_limited(reset, retry_after_ms=10)
        return Reply(text="finished on the other account")

    fake.script = script
    keys = {"limited@example.com": limited, "free@example.com": "sk-ant-api03-free"}
    with real_opencode_cluster(tmp_path, fake, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Limited", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.retry_count == 0 and done.summary == "finished on the other account"
        first, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert first.outcome == agent_pb2.AGENT_OUTCOME_RATE_LIMITED
        rested = accounts_by_id(c)[first.account_id]
        assert rested.email == "limited@example.com" and rested.is_exhausted
        assert rested.exhausted_until.seconds == reset and rested.unusable_reason == ""
        c.assert_invariants()


def test_a_refused_key_sets_its_account_aside_and_another_account_finishes_without_an_attempt(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = "sk-ant-api03-revoked"

    def script(turn: Turn) -> Reply:
        if turn.credential == revoked:
            return fake_anthropic.unauthorized()
        return Reply(text="finished on the other account")

    fake.script = script
    keys = {"revoked@example.com": revoked, "good@example.com": "sk-ant-api03-good"}
    with real_opencode_cluster(tmp_path, fake, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Refused", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.retry_count == 0 and done.summary == "finished on the other account"
        refused, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert refused.outcome == agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED
        by_email = {account.email: account for account in accounts_by_id(c).values()}
        assert by_email["revoked@example.com"].unusable_reason == "APIError: invalid x-api-key"
        assert by_email["good@example.com"].unusable_reason == ""
        assert revoked not in c.cw("account", "list").stdout
        # The key left each run's config directory when the run ended; its config stayed.
        assert len(list(tmp_path.rglob("opencode/opencode.json"))) == 2
        assert not list(tmp_path.rglob("auth.json"))
        c.assert_invariants()
