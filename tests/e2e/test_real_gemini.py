"""The real Gemini CLI run through cw, offline, against the fake Gemini API the tests serve
(tests/fake_gemini.py), in cw's sandbox: a task completes with its file in the
phase diff and the CLI's answer as its summary, its usage stored exactly as the API reported it, its
session resumed after a question, and an exhausted quota rests its account without spending an
attempt.

The CLI is the pinned version `make agent-clis` installs into .cache/ (CW_TEST_GEMINI), read-only in
the sandbox (`--agent-path`). Its model is given as the `--provider` command's argument, as a
person would (`gemini=PATH -m MODEL`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from tests import fake_gemini
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.test_real_claude import accounts_by_id, diff_files, plain_task, waiting
from tests.fake_gemini import FakeGemini, Reply, Turn, Usage, fingerprint, serving, shell, write
from tests.gemini_cli import GEMINI, MODEL

# The key a person has in the shell the orchestrator starts from: no run under an account may use it.
ORCHESTRATOR_KEY = "AIza-orchestrator-key-never-an-accounts"

if not GEMINI.exists():
    if os.environ.get("CW_REQUIRE_REAL_CLIS"):
        raise RuntimeError(f"the real Gemini CLI is missing at {GEMINI}: run `make agent-clis`")
    pytestmark = pytest.mark.skip(reason=f"no Gemini CLI at {GEMINI} (`make agent-clis` installs it)")


@contextmanager
def real_gemini_cluster(
    root: Path, fake: FakeGemini, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, max_agents: int = 2
) -> Iterator[Cluster]:
    """Both services as processes; gemini is the real CLI (the default provider), its API the
    fake; `keys` maps each account's email to its API key (created in that order)."""
    home = root / "home"
    home.mkdir()
    for name, value in {
        "GOOGLE_GEMINI_BASE_URL": fake.base_url,
        "GEMINI_API_KEY": ORCHESTRATOR_KEY,
        "HOME": str(home),
    }.items():
        monkeypatch.setenv(name, value)  # the orchestrator, started below, inherits them
    install = GEMINI.parent.parent.parent  # <install>/node_modules/.bin/gemini
    provider = f"gemini={GEMINI} -m {MODEL}"
    running = Cluster(root, [provider], max_agents, orchestrator_flags=["--agent-path", str(install)])
    try:
        running.start_store()
        for order, (email, key) in enumerate(keys.items()):
            account = account_pb2.Account(email=email, provider="gemini", credentials=key, sort_order=order)
            running.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))
        running.start_orchestrator()
        yield running
    finally:
        running.close()


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with serving(FakeGemini()) as served:
        yield served


def settled_usage(c: Cluster, task_id: str, expected: agent_pb2.Usage) -> agent_pb2.Usage | None:
    usage = c.agents_of(task_id)[0].usage
    return usage if usage == expected else None


def test_a_task_writes_its_file_answers_and_its_usage_is_what_the_api_reported(
    tmp_path: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            path = f"{turn.working_directory}/hello.txt"
            return Reply(text="Writing it.", calls=(write(path, "hello from gemini\n"),), usage=Usage(2000, 40, 0, 12))
        if turn.step == 1:
            return Reply(calls=(shell("git status --short"),), usage=Usage(2100, 25, 1500))
        return Reply(text="Wrote hello.txt.", usage=Usage(2300, 9, 1800, 4))

    fake.script = script
    key = "AIza-account-key-one"
    with real_gemini_cluster(tmp_path, fake, {"dev@example.com": key}, monkeypatch) as c:
        phase = c.phase(c.initiative("Hello", c.project()), "P")
        task = plain_task(c, phase, "hello")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.summary == "Wrote hello.txt." and done.retry_count == 0
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=60)
        assert diff_files(c, phase.id) == {"hello.txt": "hello from gemini\n"}
        # Input: the prompts (cached included); output: answers and thinking; cache reads.
        expected = agent_pb2.Usage(input_tokens=6400, output_tokens=90, cache_read_tokens=3300)
        assert [entry.usage for entry in fake.recorded() if entry.conversation] == [
            Usage(2000, 40, 0, 12),
            Usage(2100, 25, 1500),
            Usage(2300, 9, 1800, 4),
        ]
        side = [entry.usage for entry in fake.recorded() if not entry.conversation]
        assert all(usage == Usage() for usage in side)  # side questions reported nothing
        wait_for("the run's usage", partial(settled_usage, c, task.id, expected), timeout=30)
        # Every request carried the account's key, never the orchestrator's.
        assert {entry.fingerprint for entry in fake.recorded()} == {fingerprint(key)}
        [agent] = c.agents_of(task.id)
        assert agent.provider == "gemini"
        config = c.root / "workspace"
        assert not list(config.rglob(".gemini/.env"))  # the key left with the run
        c.assert_invariants()


def test_questions_answered_resume_the_same_session_with_its_conversation(
    tmp_path: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "Tabs or spaces?"}]})
    resumed_with: list[Turn] = []

    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            return Reply(calls=(shell(f"printf '%s' '{questions}' > \"$CW_SIGNAL_FILE\""),))
        if turn.step == 1:
            return Reply(text="I asked my question.")
        resumed_with.append(turn)
        said = "four spaces" if "four spaces" in turn.latest else "no answer seen"
        return Reply(text=f"Used {said}.")

    fake.script = script
    with real_gemini_cluster(tmp_path, fake, {"dev@example.com": "AIza-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = wait_for("the agent's question", partial(waiting, c, task.id), timeout=180)
        assert json.loads(asking.pending_questions)[0]["question"] == "Tabs or spaces?"
        answer = orch.QuestionAnswer(question_id="q1", answer="four spaces")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=asking.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.summary == "Used four spaces." and done.retry_count == 0
        [agent] = c.agents_of(task.id)
        assert agent.session_id == asking.session_id
        # The resumed run sent the whole conversation: the question's turns came before the answer.
        assert resumed_with and resumed_with[0].step == 2
        c.assert_invariants()


def test_an_exhausted_quota_rests_its_account_and_another_finishes_without_an_attempt(
    tmp_path: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = "AIza-limited"

    def script(turn: Turn) -> Reply:
        if turn.credential == limited:
            return fake_gemini.rate_limited("7200s")
        return Reply(text="finished on the other account")

    fake.script = script
    keys = {"limited@example.com": limited, "free@example.com": "AIza-free"}
    with real_gemini_cluster(tmp_path, fake, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Limited", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        started = datetime.now(UTC)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.retry_count == 0 and done.summary == "finished on the other account"
        first, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert first.outcome == agent_pb2.AGENT_OUTCOME_RATE_LIMITED
        rested = accounts_by_id(c)[first.account_id]
        assert rested.email == "limited@example.com" and rested.is_exhausted and rested.unusable_reason == ""
        # The API's RetryInfo said 7200s: the account rests that long from the CLI's answer.
        until = rested.exhausted_until.ToDatetime(UTC)
        assert started.timestamp() + 7200 <= until.timestamp() <= datetime.now(UTC).timestamp() + 7200
        c.assert_invariants()


def test_a_refused_key_sets_its_account_aside_and_another_account_finishes(
    tmp_path: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = "AIza-revoked"

    def script(turn: Turn) -> Reply:
        return fake_gemini.bad_key() if turn.credential == revoked else Reply(text="finished on the good key")

    fake.script = script
    keys = {"revoked@example.com": revoked, "good@example.com": "AIza-good"}
    with real_gemini_cluster(tmp_path, fake, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Refused", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.retry_count == 0 and done.summary == "finished on the good key"
        refused, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert refused.outcome == agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED
        by_email = {account.email: account for account in accounts_by_id(c).values()}
        reason = by_email["revoked@example.com"].unusable_reason
        assert reason == "Gemini API: API key not valid. Please pass a valid API key. (INVALID_ARGUMENT)"
        assert revoked not in c.cw("account", "list").stdout
        c.assert_invariants()


def test_a_session_the_cli_lost_starts_over_with_the_answers(
    tmp_path: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's session files are gone when the answer comes (`Error resuming session`): the same
    agent starts a new session whose prompt holds the task and the answer."""
    questions = json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "Which name?"}]})

    def script(turn: Turn) -> Reply:
        if "Answers to the questions you asked earlier" in turn.prompt:
            said = "answer.txt" if "answer.txt" in turn.prompt else "no answer seen"
            return Reply(text=f"Started over and used {said}.")
        if turn.step == 0:
            return Reply(calls=(shell(f"printf '%s' '{questions}' > \"$CW_SIGNAL_FILE\""),))
        return Reply(text="I asked my question.")

    fake.script = script
    with real_gemini_cluster(tmp_path, fake, {"dev@example.com": "AIza-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Lost", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = wait_for("the agent's question", partial(waiting, c, task.id), timeout=180)
        chats = list((c.root / "workspace").rglob(f"agents/{asking.id}/config/.gemini/tmp/*/chats/*"))
        assert chats  # where the CLI keeps the session: the agent's own config directory
        for chat in chats:
            chat.unlink()
        answer = orch.QuestionAnswer(question_id="q1", answer="answer.txt")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=asking.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.summary == "Started over and used answer.txt." and done.retry_count == 0
        [agent] = c.agents_of(task.id)
        assert agent.id == asking.id and agent.session_id != asking.session_id
        c.assert_invariants()
