"""The claude provider end to end, against the stand-in `claude` (tests/fixtures/agents/claude),
which behaves like the real CLI: limits, error results, final texts, the prompt on stdin, the root
guard. It names a new session id on each resume, which the real CLI does not
(tests/e2e/test_real_claude.py): cw resumes whichever id was reported last."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents.sandbox import running_as_root
from tests.e2e.cluster import AGENTS, SCRIPTED, Cluster, script, wait_for

STAND_IN = f"claude={AGENTS / 'claude'}"


@contextmanager
def claude_cluster(
    root: Path, emails: list[str], max_agents: int = 4, flags: list[str] | None = None
) -> Iterator[Cluster]:
    # In cw's own sandbox unless `flags` say otherwise: the stand-in, like Claude Code, refuses to
    # run as root without IS_SANDBOX.
    running = Cluster(root, [STAND_IN], max_agents, orchestrator_flags=list(flags or []))
    try:
        running.start_store()
        for email in emails:
            account = account_pb2.Account(
                email=email,
                provider="claude",
                credentials='{"claudeAiOauth": {"accessToken": "t"}}',
                config_json=json.dumps({"oauthAccount": {"emailAddress": email}}),
            )
            running.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))
        running.start_orchestrator()
        yield running
    finally:
        running.close()


def calls_of(c: Cluster, task_id: str | None = None) -> list[dict[str, Any]]:
    path = c.state_dir / "claude-calls.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [call for call in calls if task_id is None or call["task_id"] == task_id]


def accounts(c: Cluster) -> dict[str, account_pb2.Account]:
    listed = c.api.accounts.ListAccounts(account_pb2.ListAccountsRequest(page_size=100), timeout=10).accounts
    return {account.email: account for account in listed}


def _clock(at: datetime) -> str:
    minutes = f":{at.minute:02d}" if at.minute else ""
    return f"{at.hour % 12 or 12}{minutes}{'am' if at.hour < 12 else 'pm'}"


def limit_forms(now: datetime) -> list[tuple[Any, datetime]]:
    """Each limit form the CLI prints, naming a reset a few hours or days ahead, with that reset."""
    los_angeles = (now.astimezone(ZoneInfo("America/Los_Angeles")) + timedelta(hours=3)).replace(
        minute=0, second=0, microsecond=0
    )
    calcutta = (now.astimezone(ZoneInfo("Asia/Calcutta")) + timedelta(hours=2)).replace(
        minute=30, second=0, microsecond=0
    )
    paris = (now.astimezone(ZoneInfo("Europe/Paris")) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    epoch = int(now.timestamp()) + 5 * 3600
    event = int(now.timestamp()) + 4 * 3600
    return [
        (f"You've hit your limit · resets {_clock(los_angeles)} (America/Los_Angeles)", los_angeles),
        (f"Limit reached · resets {_clock(calcutta)} (Asia/Calcutta)", calcutta),
        (f"Weekly limit reached · resets {paris:%b} {paris.day} at {_clock(paris)} (Europe/Paris)", paris),
        (f"Claude AI usage limit reached|{epoch}", datetime.fromtimestamp(epoch, UTC)),
        ({"resetsAt": event, "rateLimitType": "five_hour"}, datetime.fromtimestamp(event, UTC)),
    ]


def test_each_limit_rests_its_account_until_the_reset_and_another_account_finishes(tmp_path: Path) -> None:
    forms = limit_forms(datetime.now(UTC))
    with claude_cluster(tmp_path, [f"dev{n}@example.com" for n in range(len(forms) + 1)], max_agents=1) as c:
        phase = c.phase(c.initiative("Limits", c.project()), "P")
        tasks = [c.task(phase, f"t{n}", limit=limit, result=f"done {n}") for n, (limit, _) in enumerate(forms)]
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        for task in tasks:
            assert c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=120).retry_count == 0
        rested = accounts(c)
        for n, (task, (_, reset)) in enumerate(zip(tasks, forms, strict=True)):
            limited, finished = calls_of(c, task.id)
            assert (limited["outcome"], finished["outcome"]) == ("limit", "done")
            assert limited["account"] != finished["account"]
            account = rested[limited["account"]]
            assert account.is_exhausted
            assert abs(account.exhausted_until.ToDatetime(UTC) - reset) < timedelta(seconds=5), n
            assert c.get_task(task.id).summary == f"done {n}"
        # cw's sandbox: an ordinary user inside, so no IS_SANDBOX is needed, and none is given.
        assert {(call["is_sandbox"], call["uid"]) for call in calls_of(c)} == {(None, 1000)}
        c.assert_invariants()


def test_results_become_reasons_and_summaries_and_long_prompts_arrive_whole(tmp_path: Path) -> None:
    with claude_cluster(tmp_path, ["dev@example.com"]) as c:
        phase = c.phase(c.initiative("Results", c.project()), "P")
        schema = c.task(phase, "schema", result="Created the users table.")
        queries = c.task(phase, "queries", after=[schema.id], result="Wrote the queries.")
        failing = c.task(phase, "failing", error_result={"subtype": "error_during_execution", "text": "tests fail"})
        description = "--force is how this description starts\n" + script(result="read it all") + "é" * (300 * 1024)
        long = c.api.tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                task=task_pb2.Task(
                    initiative_id=phase.initiative_id, phase_id=phase.id, name="long", description=description
                )
            )
        )
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=120)

        assert c.get_task(schema.id).summary == "Created the users table."
        [dependent_call] = calls_of(c, queries.id)
        told = Path(dependent_call["prompt_file"]).read_text()
        assert f"- schema (task {schema.id}, agent " in told and "completed): Created the users table." in told

        retried = c.get_task(failing.id)
        assert (retried.retry_count, retried.summary) == (1, "Done.")
        reasons = [e.details["error"] for e in c.events() if e.type == "task:retried" and e.task_id == failing.id]
        assert reasons == ["error_during_execution: tests fail"]
        crashed = [a for a in c.agents_of(failing.id) if a.status == agent_pb2.AGENT_STATUS_CRASHED]
        assert json.loads(crashed[0].result)["error"] == "error_during_execution: tests fail"

        [long_call] = calls_of(c, long.id)
        [long_agent] = c.agents_of(long.id)
        written = (Path(long_agent.output_file_path).parent / "prompt.md").read_bytes()
        assert long_call["prompt_sha256"] == hashlib.sha256(written).hexdigest()
        assert description in written.decode() and long_call["prompt_length"] > 300 * 1024
        assert long_call["argv"][-2:] == ["--session-id", long_agent.session_id]
        assert c.get_task(long.id).summary == "read it all"
        c.assert_invariants()


def waiting_with(c: Cluster, task_id: str, question_id: str) -> agent_pb2.Agent | None:
    for agent in c.agents_of(task_id):
        if agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT and question_id in agent.pending_questions:
            return agent
    return None


def test_two_rounds_of_questions_resume_the_session_the_cli_reported(tmp_path: Path) -> None:
    with claude_cluster(tmp_path, ["dev@example.com"]) as c:
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = c.task(phase, "t", questions_rounds=2, result="Finished after two answers.")
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        reported = []
        for question in ("q1", "q2"):
            agent = wait_for(f"claude to ask {question}", partial(waiting_with, c, task.id, question))
            reported.append(calls_of(c, task.id)[-1]["session"])
            assert agent.session_id == reported[-1]
            answer = orch.QuestionAnswer(question_id=question, answer=f"answer to {question}")
            c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=[answer]), timeout=10)
        assert c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED).summary == "Finished after two answers."
        first, second, third = calls_of(c, task.id)
        assert first["resumed"] is None and [second["resumed"], third["resumed"]] == reported
        assert len({first["session"], second["session"], third["session"]}) == 3
        [agent] = c.agents_of(task.id)
        assert agent.session_id == third["session"] and agent.session_id != reported[0]
        c.assert_invariants()


def test_where_bubblewrap_cannot_run_the_orchestrator_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    arguments = ["--store", "127.0.0.1:1", "--listen", "127.0.0.1:0", "--workspace", str(tmp_path / "ws")]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bwrap").symlink_to("/bin/false")  # installed, but it cannot make a sandbox here
    for path in (str(tmp_path / "empty"), str(tmp_path / "bin")):
        refused = subprocess.run(
            [sys.executable, "-m", "orchestrator_service", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PATH": path},
        )
        assert refused.returncode == 2 and refused.stdout == ""
        [line] = refused.stderr.splitlines()
        assert "bubblewrap" in line and "apt-get install bubblewrap" in line and "--agents-in-sandbox" in line
    assert not (tmp_path / "ws").exists()


def test_a_resume_the_cli_cannot_do_starts_a_new_session_with_the_task_and_the_answers(tmp_path: Path) -> None:
    with claude_cluster(tmp_path, ["dev@example.com"]) as c:
        phase = c.phase(c.initiative("Lost session", c.project()), "P")
        task = c.task(phase, "t", questions_rounds=1, result="Finished in a new session.")
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for("claude to ask q1", partial(waiting_with, c, task.id, "q1"))
        # The CLI forgets the conversation (its transcripts are gone): `--resume` cannot work.
        shutil.rmtree(tmp_path / "workspace" / "agents" / agent.id / "config" / "projects")
        answer = orch.QuestionAnswer(question_id="q1", answer="spaces, four of them")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=[answer]), timeout=10)

        def new_session_started() -> list[dict[str, Any]] | None:
            calls = calls_of(c, task.id)
            return calls if len(calls) >= 3 and "prompt_file" in calls[2] else None

        first, failed_resume, fresh = wait_for("a new session", new_session_started)[:3]
        assert failed_resume["refused"] == f"No conversation found with session ID: {first['session']}"
        assert fresh["resumed"] is None and fresh["session"] != first["session"]
        prompt = Path(fresh["prompt_file"]).read_text()
        assert "# Task: t" in prompt and "spaces, four of them" in prompt  # the task, then the answers
        assert any(e.type == "agent:new_session" and e.agent_id == agent.id for e in c.events())
        # The stand-in asks its one question in every new conversation; answered, it finishes.
        again = wait_for("the new session's question", partial(waiting_with, c, task.id, "q1"))
        assert again.id == agent.id and again.session_id == fresh["session"] != first["session"]
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        assert done.summary == "Finished in a new session." and done.retry_count == 0
        c.assert_invariants()


def test_a_claude_run_begun_in_the_persons_sandbox_resumes_in_cws_after_a_restart(tmp_path: Path) -> None:
    with claude_cluster(tmp_path, ["dev@example.com"], flags=["--agents-in-sandbox"]) as c:
        phase = c.phase(c.initiative("Root", c.project()), "P")
        task = c.task(phase, "t", questions_rounds=1, result="done")
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for("claude to ask q1", partial(waiting_with, c, task.id, "q1"))
        assert c.orchestrator is not None
        c.orchestrator.kill()
        # Restarted with another default provider and no --agents-in-sandbox: claude stays known,
        # and now runs in cw's sandbox.
        c.providers = [f"scripted={SCRIPTED}", STAND_IN]
        c.orchestrator_flags = []
        c.start_orchestrator()
        answer = orch.QuestionAnswer(question_id="q1", answer="tabs")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=[answer]), timeout=10)
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        assert done.retry_count == 0
        first, resumed = calls_of(c, task.id)
        as_root = 0 if running_as_root() else os.geteuid()
        assert (first["is_sandbox"], first["uid"]) == ("1" if running_as_root() else None, as_root)
        assert (resumed["is_sandbox"], resumed["uid"]) == (None, 1000)
