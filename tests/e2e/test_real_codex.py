"""The real Codex CLI (`@openai/codex`, pinned, `make agent-clis`) run through cw, offline, against
the fake Responses API the tests serve (tests/fake_openai.py): the built-in `codex` provider end to
end.

It runs as cw runs every agent, in cw's sandbox (Codex's own sandbox bypassed), with the CLI's
install directory given read-only (`--agent-path`). Each account's `config_json` is Codex's
config.toml naming the fake API as a custom provider that uses the account's key from auth.json
(`requires_openai_auth`); its credentials are a bare API key. The orchestrator's own
OPENAI_API_KEY must never be what a run under an account sends.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents.supervisor import AgentFiles
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.test_real_claude import accounts_by_id, diff_files, plain_task, waiting
from tests.fake_openai import (
    Failure,
    FakeResponses,
    Reply,
    Request,
    fake_responses,
    fingerprint,
    rate_limited,
    unauthorized,
)

ROOT = Path(__file__).resolve().parents[2]
CODEX = Path(os.environ.get("CW_TEST_CODEX") or ROOT / ".cache/agent-clis/codex/node_modules/.bin/codex")
INSTALL = CODEX.parent.parent.parent  # <install>/node_modules/.bin/codex
ORCHESTRATOR_KEY = "sk-proj-orchestrator-key-never-an-accounts"


def config_toml(base_url: str) -> str:
    """An account's config.toml: the fake API as a custom provider taking the key from auth.json."""
    return "\n".join(
        [
            'model = "test-model"',
            'model_provider = "fake"',
            "[model_providers.fake]",
            'name = "fake"',
            f'base_url = "{base_url}"',
            'wire_api = "responses"',
            "requires_openai_auth = true",
            "",
        ]
    )


@contextmanager
def codex_cluster(
    root: Path, api: FakeResponses, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, max_agents: int = 2
) -> Iterator[Cluster]:
    """Both services as processes; `codex` is the real CLI; `keys` maps each account's email to
    its API key (created in that order, so the first is handed out first)."""
    assert CODEX.exists(), f"{CODEX} is missing: run `make agent-clis`"
    home = root / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", ORCHESTRATOR_KEY)  # as a person's shell may hold it
    running = Cluster(root, [f"codex={CODEX}"], max_agents, orchestrator_flags=["--agent-path", str(INSTALL)])
    try:
        running.start_store()
        for order, (email, key) in enumerate(keys.items()):
            account = account_pb2.Account(
                email=email, provider="codex", credentials=key, config_json=config_toml(api.base_url), sort_order=order
            )
            running.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))
        running.start_orchestrator()
        yield running
    finally:
        running.close()


def shell(command: str, input_tokens: int = 0, cached_tokens: int = 0, output_tokens: int = 0) -> Reply:
    return Reply("", input_tokens, cached_tokens, output_tokens, commands=(command,))


def conversation(api: FakeResponses) -> list[Request]:
    return [request for request in api.recorded if request.status == 200]


def usage_of(c: Cluster, task_id: str, expected: agent_pb2.Usage) -> agent_pb2.Usage | None:
    (agent,) = c.agents_of(task_id)
    return agent.usage if agent.usage == expected else None


# ---- a task done: its file in the diff, its summary, its usage exactly ----------------------------


def test_a_task_completes_with_its_file_its_summary_and_its_usage_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(request: Request) -> Reply:
        if not request.after_tool:
            return shell(
                "printf 'hello from codex\\n' > hello.txt", input_tokens=1200, cached_tokens=100, output_tokens=30
            )
        return Reply("Wrote hello.txt.", input_tokens=1300, cached_tokens=1100, output_tokens=12)

    with (
        fake_responses(script=script) as api,
        codex_cluster(tmp_path, api, {"dev@example.com": "sk-dev"}, monkeypatch) as c,
    ):
        phase = c.phase(c.initiative("Hello", c.project()), "P")
        task = plain_task(c, phase, "hello")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.summary == "Wrote hello.txt." and done.retry_count == 0
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=60)
        assert diff_files(c, phase.id) == {"hello.txt": "hello from codex\n"}
        # The two requests of the turn, summed by the CLI: input includes the cached tokens.
        expected = agent_pb2.Usage(input_tokens=2500, output_tokens=42, cache_read_tokens=1200)
        wait_for("the usage the API reported", partial(usage_of, c, task.id, expected))
        (agent,) = c.agents_of(task.id)
        assert agent.provider == "codex" and agent.outcome == agent_pb2.AGENT_OUTCOME_DONE
        # The thread Codex named is the agent's session (it names it, not cw).
        output = Path(agent.output_file_path).read_text()
        assert f'"thread.started","thread_id":"{agent.session_id}"' in output
        # Every request carried the account's key, never the orchestrator's.
        assert {request.credential for request in api.recorded} == {fingerprint("sk-dev")}
        # The key left the run's config directory with the run.
        assert not (AgentFiles.of(c.root / "workspace", agent.id).config_dir / "auth.json").exists()
        c.assert_invariants()


# ---- questions, answered, resume the same thread ---------------------------------------------------

QUESTIONS = json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "Tabs or spaces?"}]})


def asking_script(resumed_with: list[Request]) -> partial[Reply]:
    return partial(_asking, resumed_with)


def _asking(resumed_with: list[Request], request: Request) -> Reply:
    """The agent asks through the signal file (a shell command, as a model following cw's prompt
    does), then answers with what it was told."""
    if "four spaces" in request.user_text:
        resumed_with.append(request)
        return Reply("Used four spaces.", input_tokens=50, output_tokens=5)
    if not request.after_tool:
        return shell(f"printf '%s' '{QUESTIONS}' > \"$CW_SIGNAL_FILE\"", input_tokens=10, output_tokens=1)
    return Reply("I asked my question.", input_tokens=20, output_tokens=2)


def answer(c: Cluster, task_id: str) -> agent_pb2.Agent:
    asking = wait_for("the agent's question", partial(waiting, c, task_id), timeout=120)
    assert json.loads(asking.pending_questions)[0]["question"] == "Tabs or spaces?"
    reply = orch.QuestionAnswer(question_id="q1", answer="four spaces")
    c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=asking.id, answers=[reply]), timeout=10)
    return asking


def test_questions_answered_resume_the_same_thread_with_its_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resumed_with: list[Request] = []
    with (
        fake_responses(script=asking_script(resumed_with)) as api,
        codex_cluster(tmp_path, api, {"dev@example.com": "sk-dev"}, monkeypatch) as c,
    ):
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = answer(c, task.id)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.summary == "Used four spaces." and done.retry_count == 0
        (agent,) = c.agents_of(task.id)
        assert agent.session_id == asking.session_id  # `codex exec resume` keeps the thread id
        # The resumed run sent the whole thread: the question's command and its output came first.
        assert resumed_with and resumed_with[0].tool_outputs
        # Usage across both runs of the thread, as the API reported it.
        expected = agent_pb2.Usage(input_tokens=80, output_tokens=8)
        wait_for("the usage of both runs", partial(usage_of, c, task.id, expected))
        c.assert_invariants()


def test_a_thread_the_cli_lost_starts_afresh_with_the_prompt_and_the_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex keeps its threads in CODEX_HOME/sessions; gone, `exec resume` says `no rollout found`:
    the same agent starts a new thread whose prompt holds the task and the answers."""
    resumed_with: list[Request] = []
    with (
        fake_responses(script=asking_script(resumed_with)) as api,
        codex_cluster(tmp_path, api, {"dev@example.com": "sk-dev"}, monkeypatch) as c,
    ):
        phase = c.phase(c.initiative("Lost", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = wait_for("the agent's question", partial(waiting, c, task.id), timeout=120)
        sessions = AgentFiles.of(c.root / "workspace", asking.id).config_dir / "sessions"
        assert sessions.is_dir()
        shutil.rmtree(sessions)
        answer(c, task.id)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.summary == "Used four spaces." and done.retry_count == 0
        (agent,) = c.agents_of(task.id)
        assert agent.session_id and agent.session_id != asking.session_id  # a new thread
        [fresh] = resumed_with
        assert not fresh.tool_outputs and "# Task: t" in fresh.user_text  # the prompt, not the old thread
        assert "these are the answers to the questions it asked.\n- q1: four spaces" in fresh.user_text
        c.assert_invariants()


# ---- a usage limit rests the account, a refused key sets it aside: no attempt spent -------------


def test_a_usage_limit_rests_its_account_until_the_reset_and_another_account_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset = int(time.time()) + 3 * 3600 + 1800

    def script(request: Request) -> Reply | Failure:
        if request.credential == fingerprint("sk-limited"):
            return rate_limited(reset)
        return Reply("finished on the other account")

    keys = {"limited@example.com": "sk-limited", "free@example.com": "sk-free"}
    with fake_responses(script=script) as api, codex_cluster(tmp_path, api, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Limited", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.retry_count == 0 and done.summary == "finished on the other account"
        first, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert first.outcome == agent_pb2.AGENT_OUTCOME_RATE_LIMITED
        rested = accounts_by_id(c)[first.account_id]
        assert rested.email == "limited@example.com" and rested.is_exhausted
        # Codex prints the reset to the minute, in local time.
        assert reset - 60 < rested.exhausted_until.seconds <= reset
        assert [request.status for request in api.recorded] == [429, 200]
        c.assert_invariants()


def test_a_refused_key_sets_its_account_aside_and_another_account_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(request: Request) -> Reply | Failure:
        if request.credential == fingerprint("sk-revoked"):
            return unauthorized()
        return Reply("finished with a good key")

    keys = {"revoked@example.com": "sk-revoked", "good@example.com": "sk-good"}
    with fake_responses(script=script) as api, codex_cluster(tmp_path, api, keys, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Refused", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=180)
        assert done.retry_count == 0 and done.summary == "finished with a good key"
        refused, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert refused.outcome == agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED
        account = accounts_by_id(c)[refused.account_id]
        assert account.email == "revoked@example.com" and "401 Unauthorized" in account.unusable_reason
        assert "sk-revoked" not in c.cw("account", "list").stdout
        c.assert_invariants()
