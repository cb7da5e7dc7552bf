"""The real Claude Code CLI run through cw, offline, against the fake Anthropic API the tests serve
(tests/fixtures/fake_anthropic.py): what the stand-in (tests/fixtures/agents/claude) claims, proven
with the program users run.

The CLI is the pinned version `make claude-cli` installs into .cache/ (`make test` depends on it and
sets CW_REQUIRE_REAL_CLAUDE, so there a missing CLI fails instead of skipping). It runs as cw runs
every agent, in cw's sandbox: an ordinary user there, so Claude Code takes
--dangerously-skip-permissions without IS_SANDBOX (which cw does not set), with the CLI's install
directory given read-only (`--agent-path`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, wait_for
from tests.fixtures import fake_anthropic
from tests.fixtures.fake_anthropic import FakeAnthropic, Reply, Turn, bash, fingerprint, serving, write

ROOT = Path(__file__).resolve().parents[2]
REAL_CLAUDE = Path(os.environ.get("CW_TEST_CLAUDE") or ROOT / ".cache/npm/claude-code-2.1.197/node_modules/.bin/claude")
# The key a person has in the shell the orchestrator starts from: no run under an account may use it.
ORCHESTRATOR_KEY = "sk-ant-api03-orchestrator-key-never-an-accounts"
_TASK_NAME = re.compile(r"# Task: (?P<name>\S+)")

if not REAL_CLAUDE.exists():
    if os.environ.get("CW_REQUIRE_REAL_CLAUDE"):
        raise RuntimeError(f"the real Claude Code CLI is missing at {REAL_CLAUDE}: run `make claude-cli`")
    pytestmark = pytest.mark.skip(reason=f"no Claude Code CLI at {REAL_CLAUDE} (`make claude-cli` installs it)")


def task_of(turn: Turn) -> str:
    """Which task a request belongs to: cw's prompt names it (`# Task: NAME`)."""
    found = _TASK_NAME.search(turn.prompt)
    return found.group("name") if found else ""


def oauth_credentials(token: str) -> str:
    """A subscription's .credentials.json: an access token the CLI sends as a bearer token, valid
    for an hour, so the CLI never tries to refresh it."""
    expires = int((time.time() + 3600) * 1000)
    return json.dumps(
        {
            "claudeAiOauth": {
                "accessToken": token,
                "refreshToken": f"{token}-refresh",
                "expiresAt": expires,
                "scopes": ["user:inference", "user:profile"],
                "subscriptionType": "max",
            }
        }
    )


@contextmanager
def real_claude_cluster(
    root: Path, fake: FakeAnthropic, accounts: dict[str, str], monkeypatch: pytest.MonkeyPatch, max_agents: int = 2
) -> Iterator[Cluster]:
    """Both services as processes; claude is the real CLI, its API the fake; `accounts` maps each
    account's email to its access token (created in that order, so the first is handed out first).
    The orchestrator's environment holds ORCHESTRATOR_KEY, as a person's shell may."""
    home = root / "home"
    home.mkdir()
    environment = {
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": ORCHESTRATOR_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HOME": str(home),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # the orchestrator, started below, inherits them
    install = REAL_CLAUDE.parent.parent.parent  # <install>/node_modules/.bin/claude
    running = Cluster(root, [f"claude={REAL_CLAUDE}"], max_agents, orchestrator_flags=["--agent-path", str(install)])
    try:
        running.start_store()
        for order, (email, token) in enumerate(accounts.items()):
            account = account_pb2.Account(
                email=email,
                provider="claude",
                credentials=oauth_credentials(token),
                config_json=json.dumps({"oauthAccount": {"emailAddress": email}, "hasCompletedOnboarding": True}),
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


def accounts_by_id(c: Cluster) -> dict[str, account_pb2.Account]:
    listed = c.api.accounts.ListAccounts(account_pb2.ListAccountsRequest(page_size=100), timeout=10).accounts
    return {account.id: account for account in listed}


def plain_task(c: Cluster, phase: phase_pb2.Phase, name: str, description: str = "Do the work.") -> task_pb2.Task:
    task = task_pb2.Task(initiative_id=phase.initiative_id, phase_id=phase.id, name=name, description=description)
    return c.api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task))


def diff_files(c: Cluster, phase_id: str) -> dict[str, str]:
    """Each file the phase's diff adds, with its added lines."""
    files: dict[str, str] = {}
    for project in c.diff(phase_id).projects:
        current = ""
        for line in project.unified_diff.splitlines():
            if line.startswith("+++ b/"):
                current = line.removeprefix("+++ b/")
                files[current] = ""
            elif line.startswith("+") and not line.startswith("+++") and current:
                files[current] += line[1:] + "\n"
    return files


# ---- every request carries its own account's credential --------------------------------------


def test_every_model_request_of_every_run_carries_its_own_accounts_credential(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_API_KEY in the orchestrator's environment overrode every account's credentials;
    it is not passed on now: the fake API records whose credential each request carried."""

    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            return Reply(tools=(bash("git status --short"),))
        return Reply(text=f"checked {task_of(turn)}")

    fake.script = script
    tokens = {"one@example.com": "sk-ant-oat01-account-one", "two@example.com": "sk-ant-oat01-account-two"}
    with real_claude_cluster(tmp_path, fake, tokens, monkeypatch) as c:
        phase = c.phase(c.initiative("Credentials", c.project()), "P")
        tasks = [plain_task(c, phase, f"t{n}") for n in range(4)]
        c.approve(phase)
        for task in tasks:
            assert c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120).summary == f"checked {task.name}"
        by_id = accounts_by_id(c)
        expected = {
            task.name: fingerprint(tokens[by_id[agent.account_id].email])
            for task in tasks
            for agent in c.agents_of(task.id)
        }
        assert len(set(expected.values())) == 2  # both accounts ran tasks
        conversation = [request for request in fake.recorded() if request.conversation]
        assert {request.label for request in conversation} == set(expected)
        for request in conversation:
            assert request.fingerprint == expected[request.label], request
        assert fingerprint(ORCHESTRATOR_KEY) not in {request.fingerprint for request in fake.recorded()}
        assert len(conversation) == 2 * len(tasks)  # each: the Bash call, then the final text
        c.assert_invariants()


# ---- a refused credential -----------------------------------------------------------------------


def test_a_refused_credential_sets_its_account_aside_and_another_account_finishes_without_an_attempt(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = "sk-ant-oat01-revoked"

    def script(turn: Turn) -> Reply:
        if turn.credential == revoked:
            return fake_anthropic.unauthorized()
        return Reply(text="finished on the other account")

    fake.script = script
    tokens = {"revoked@example.com": revoked, "good@example.com": "sk-ant-oat01-good"}
    with real_claude_cluster(tmp_path, fake, tokens, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Refused", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.retry_count == 0 and done.summary == "finished on the other account"
        refused, finished = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert refused.outcome == agent_pb2.AGENT_OUTCOME_CREDENTIALS_REFUSED
        assert finished.outcome == agent_pb2.AGENT_OUTCOME_DONE
        by_email = {account.email: account for account in accounts_by_id(c).values()}
        assert refused.account_id == by_email["revoked@example.com"].id
        assert finished.account_id == by_email["good@example.com"].id
        assert by_email["revoked@example.com"].unusable_reason == "Not logged in · Please run /login"
        assert by_email["good@example.com"].unusable_reason == ""
        listed = c.cw("account", "list").stdout
        assert "Not logged in" in listed
        inbox = c.cw_json("inbox")
        [item] = [item for item in inbox if item["kind"] == "account refused"]
        assert item["id"] == refused.account_id and "Not logged in" in item["detail"]
        assert revoked not in listed and revoked not in json.dumps(inbox)
        # The CLI tried the refused token once more (CLAUDE_CODE_MAX_RETRIES=1, cw's default), no more.
        statuses = [(r.status, r.fingerprint) for r in fake.recorded() if r.conversation]
        assert statuses == [(401, fingerprint(revoked))] * 2 + [(200, fingerprint(tokens["good@example.com"]))]
        c.assert_invariants()


# ---- a usage limit ------------------------------------------------------------------------------


def test_a_usage_limit_rests_its_account_until_the_reset_and_another_account_finishes(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 with the unified rate-limit headers a subscription's limit carries: the CLI says
    `You've hit your session limit · resets ...` and writes a rejected rate_limit_event with the
    reset; the account rests until then, as with the stand-in (test_claude_provider.py)."""
    limited = "sk-ant-oat01-limited"
    reset = int(time.time()) + 3 * 3600

    def script(turn: Turn) -> Reply:
        if turn.credential == limited:
            return fake_anthropic.rate_limited(reset)
        return Reply(text="finished on the rested account's partner")

    fake.script = script
    tokens = {"limited@example.com": limited, "free@example.com": "sk-ant-oat01-free"}
    with real_claude_cluster(tmp_path, fake, tokens, monkeypatch, max_agents=1) as c:
        phase = c.phase(c.initiative("Limited", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.retry_count == 0 and done.summary == "finished on the rested account's partner"
        first, _ = sorted(c.agents_of(task.id), key=lambda agent: agent.create_time.ToDatetime())
        assert first.outcome == agent_pb2.AGENT_OUTCOME_RATE_LIMITED
        rested = accounts_by_id(c)[first.account_id]
        assert rested.email == "limited@example.com" and rested.is_exhausted
        assert rested.exhausted_until.seconds == reset and rested.unusable_reason == ""
        c.assert_invariants()


# ---- questions, answered, resume the same session ------------------------------------------------


def waiting(c: Cluster, task_id: str) -> agent_pb2.Agent | None:
    found = [agent for agent in c.agents_of(task_id) if agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]
    return found[0] if found else None


def test_questions_answered_resume_the_same_session_with_its_conversation(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent asks through the signal file (a Bash call, as a model following cw's prompt does);
    the answer resumes the CLI's own session: the same id, the earlier turns sent again."""
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
    with real_claude_cluster(tmp_path, fake, {"dev@example.com": "sk-ant-oat01-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = plain_task(c, phase, "t")
        c.approve(phase)
        asking = wait_for("the agent's question", partial(waiting, c, task.id), timeout=120)
        assert json.loads(asking.pending_questions)[0]["question"] == "Tabs or spaces?"
        answer = orch.QuestionAnswer(question_id="q1", answer="four spaces")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=asking.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        assert done.summary == "Used four spaces." and done.retry_count == 0
        [agent] = c.agents_of(task.id)
        assert agent.session_id == asking.session_id  # the real CLI keeps its session id on resume
        # The resumed run sent the whole conversation: the question's turns came before the answer.
        assert resumed_with and resumed_with[0].step == 2
        c.assert_invariants()


# ---- nothing an agent wrote is lost -------------------------------------------------------------


def test_a_file_written_with_write_and_never_committed_is_in_the_phase_diff(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first task of a new user: the CLI writes a file where it says it works, and commits
    nothing (the phase diff was once empty: its work is checkpointed now)."""

    def script(turn: Turn) -> Reply:
        if turn.step == 0:
            return Reply(tools=(write(f"{turn.working_directory}/hello.txt", "hello from claude\n"),))
        return Reply(text="Wrote hello.txt.")

    fake.script = script
    with real_claude_cluster(tmp_path, fake, {"dev@example.com": "sk-ant-oat01-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Hello", c.project()), "P")
        task = plain_task(c, phase, "hello")
        c.approve(phase)
        assert c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120).summary == "Wrote hello.txt."
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=60)
        assert diff_files(c, phase.id) == {"hello.txt": "hello from claude\n"}
        c.assert_invariants()


def claude_of(shim_pid: int) -> int | None:
    """The agent process the shim started (its only child)."""
    try:
        children = Path(f"/proc/{shim_pid}/task/{shim_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def test_a_run_killed_after_writing_a_file_is_retried_with_that_file(
    tmp_path: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL halfway: the file the first run wrote is there when the retry starts, and in the
    final diff."""
    halfway = threading.Event()
    release = threading.Event()
    retry_found: list[bool] = []

    def script(turn: Turn) -> Reply:
        first_run = not halfway.is_set()
        if first_run and turn.step == 0:
            return Reply(tools=(write(f"{turn.working_directory}/half.txt", "written before the kill\n"),))
        if first_run:
            halfway.set()
            release.wait(timeout=60)  # the run hangs in its request until it is killed
            return Reply(text="never read")
        if turn.step == 0:
            retry_found.append((Path(turn.working_directory) / "half.txt").is_file())
        return Reply(text="Finished what the first run started.")

    fake.script = script
    with real_claude_cluster(tmp_path, fake, {"dev@example.com": "sk-ant-oat01-dev"}, monkeypatch) as c:
        phase = c.phase(c.initiative("Killed", c.project()), "P")
        task = plain_task(c, phase, "half")
        c.approve(phase)
        wait_for("the first run to hang after its Write", halfway.is_set, timeout=120)
        [agent] = c.agents_of(task.id)
        claude = wait_for("the claude process", partial(claude_of, agent.pid))
        os.kill(claude, signal.SIGKILL)
        try:
            done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120)
        finally:
            release.set()
        assert done.retry_count == 1 and retry_found == [True]
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=60)
        assert diff_files(c, phase.id) == {"half.txt": "written before the kill\n"}
        c.assert_invariants()
