"""End-to-end recovery when the store restarts, and the `claude` provider's command line."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import grpc
import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.orchestrator.v1 import orchestrator_pb2_grpc
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import AGENTS, Cluster, cluster, wait_for
from tests.support import authorized_channel


def _follow(address: str, token: str, received: list[int], stop: threading.Event) -> None:
    """A client of StreamEvents that reconnects with the last sequence it saw."""
    with authorized_channel(address, token) as channel:
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
        while not stop.is_set():
            after = received[-1] if received else 0
            stream = stub.StreamEvents(orch.StreamEventsRequest(after_sequence=after), timeout=2)
            try:
                for event in stream:
                    if event.sequence:
                        received.append(event.sequence)
            except grpc.RpcError:
                time.sleep(0.1)


def test_store_restart_mid_run(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Store restart", c.project()), "P")
        tasks = [c.task(phase, f"t{i}", files={f"t{i}.txt": "x"}, wait_for=str(release)) for i in range(2)]
        received: list[int] = []
        stop = threading.Event()
        assert c.orchestrator is not None
        follower = threading.Thread(
            target=_follow, args=(c.orchestrator.address, c.client_token_file.read_text().strip(), received, stop)
        )
        follower.start()
        try:
            c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
            wait_for("both agents spawned", lambda: c.all_spawned(tasks))
            assert c.store is not None
            c.store.kill()
            try:
                c.orch.GetPhaseDiff(orch.GetPhaseDiffRequest(phase_id=phase.id), timeout=15)
                raise AssertionError("the orchestrator cannot answer without its store")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
            release.touch()
            wait_for("the agents to finish while the store is down", lambda: c.exited_agents() == 2)
            c.start_store()
            for task in tasks:
                c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
            c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
            head = c.events()[-1].sequence
            wait_for("the follower to catch up", lambda: received and received[-1] >= head)
        finally:
            stop.set()
            follower.join(10)
        assert received[: len(received)] == sorted(set(received))
        assert received[:head] == list(range(1, head + 1))
        c.assert_invariants()


def test_claude_provider_flags_session_and_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{AGENTS}{os.pathsep}{os.environ['PATH']}")
    running = Cluster(tmp_path, ["claude=claude"], orchestrator_flags=["--agents-in-sandbox"])
    try:
        running.start_store()
        running.api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account=account_pb2.Account(
                    email="dev@example.com", provider="claude", credentials='{"token": "t"}', config_json="{}"
                )
            )
        )
        running.start_orchestrator()
        c = running
        phase = c.phase(c.initiative("Claude", c.project()), "P")
        task = c.task(phase, "t")
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for(
            "claude to ask its question",
            lambda: [a for a in c.agents_of(task.id) if a.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT],
        )[0]
        # Between runs the account's credentials are gone from the agent's directory (private to
        # the user); the stand-in refuses to resume without them, so the resume proves they return.
        control = tmp_path / "workspace" / "agents" / agent.id
        assert not (control / "config" / ".credentials.json").exists()
        assert (control / "config" / ".claude.json").exists()
        assert {path.stat().st_mode & 0o777 for path in (control, control / "work", control / "config")} == {0o700}
        twice = [
            orch.QuestionAnswer(question_id="q1", answer="tabs"),
            orch.QuestionAnswer(question_id="q1", answer="x"),
        ]
        with pytest.raises(grpc.RpcError) as refused:
            c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=twice), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        c.orch.AnswerQuestions(
            orch.AnswerQuestionsRequest(
                agent_id=agent.id, answers=[orch.QuestionAnswer(question_id="q1", answer="tabs")]
            ),
            timeout=10,
        )
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        wait_for("the credentials to leave again", lambda: not (control / "config" / ".credentials.json").exists())
        assert done.summary == "resumed with: - q1: tabs"
        calls = [json.loads(line) for line in (c.state_dir / "claude-calls.jsonl").read_text().splitlines()]
        first, second = calls[0]["argv"], calls[1]["argv"]
        assert first[first.index("--session-id") + 1] == agent.session_id
        assert second[second.index("--resume") + 1] == agent.session_id
        assert "--session-id" not in second
        assert calls[0]["config_dir"].startswith(str(tmp_path / "workspace" / "agents"))
        assert [call["is_sandbox"] for call in calls] == ["1", "1"]
        lines = [json.loads(line) for line in Path(agent.output_file_path).read_text().splitlines()]
        assert [line["type"] for line in lines] == ["system", "assistant", "result"] * 2
        c.assert_invariants()
    finally:
        running.close()
