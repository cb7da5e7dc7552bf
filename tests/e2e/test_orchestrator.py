"""End-to-end: both services as separate processes, real git repositories, scripted agents."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, event_pb2, initiative_pb2, log_chunk_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, cluster, wait_for

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
BLOCKED = task_pb2.TASK_STATUS_BLOCKED


def _files(diff: orch.GetPhaseDiffResponse) -> set[str]:
    return {file.path for project in diff.projects for file in project.files}


def _approve(c: Cluster, *phases: phase_pb2.Phase) -> None:
    for phase in phases:
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)


def _types(c: Cluster) -> list[event_pb2.Event]:
    return [e for e in c.events() if ":" in e.type and not e.type.endswith((":created", ":updated", ":deleted"))]


def test_happy_path_two_dependent_phases(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        project = c.project()
        initiative = c.initiative("User auth", project)
        first = c.phase(initiative, "Schema")
        second = c.phase(initiative, "API", after=[first.id])
        a1 = c.task(first, "a1", files={"schema/a1.sql": "create table a1;"})
        a2 = c.task(first, "a2", after=[a1.id], files={"schema/a2.sql": "create table a2;"})
        a3 = c.task(first, "a3", after=[a2.id], files={"schema/a3.sql": "create table a3;"})
        b1 = c.task(second, "b1", files={"api/b1.py": "b1"})
        b2 = c.task(second, "b2", after=[b1.id], files={"api/b2.py": "b2"})
        b3 = c.task(second, "b3", after=[b2.id], files={"api/b3.py": "b3"})
        _approve(c, first, second)

        c.wait_phase(first.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert c.get_phase(second.id).status == phase_pb2.PHASE_STATUS_APPROVED  # waits for the merge
        first_diff = c.diff(first.id)
        assert _files(first_diff) == {"schema/a1.sql", "schema/a2.sql", "schema/a3.sql"}
        merged = c.orch.MergePhase(orch.MergePhaseRequest(phase_id=first.id), timeout=30)
        assert merged.status == phase_pb2.PHASE_STATUS_COMPLETED and len(merged.merge_base) == 40
        assert c.diff(first.id) == first_diff

        c.wait_phase(second.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c.diff(second.id)) == {"api/b1.py", "api/b2.py", "api/b3.py"}
        c.orch.MergePhase(orch.MergePhaseRequest(phase_id=second.id), timeout=30)
        wait_for(
            "the initiative to await review",
            lambda: (
                c.api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=initiative.id)).status
                == initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW
            ),
        )

        events = _types(c)
        order = [(e.type, e.task_id or e.phase_id) for e in events]

        def at(kind: str, subject: str) -> int:
            return order.index((kind, subject))

        for earlier, later in ((a1, a2), (a2, a3), (b1, b2), (b2, b3)):
            assert at("task:completed", earlier.id) < at("task:dispatched", later.id)
        assert at("phase:started", first.id) < at("task:dispatched", a1.id)
        assert at("task:completed", a3.id) < at("phase:pending_review", first.id)
        assert at("phase:pending_review", first.id) < at("phase:completed", first.id)
        assert at("phase:completed", first.id) < at("phase:started", second.id)
        assert at("phase:started", second.id) < at("task:dispatched", b1.id)
        spawned = [e for e in events if e.type == "agent:spawned"]
        stopped = [e for e in events if e.type == "agent:stopped"]
        assert len(spawned) == len(stopped) == 6
        for task in (a1, a2, a3, b1, b2, b3):
            assert len(c.agents_of(task.id)) == 1
        c.assert_invariants()


def test_restart_while_agents_run(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        project = c.project()
        phase = c.phase(c.initiative("Restart", project), "P")
        tasks = [c.task(phase, f"t{i}", files={f"t{i}.txt": str(i)}, wait_for=str(release)) for i in range(3)]
        _approve(c, phase)
        wait_for("three spawned agents", lambda: c.all_spawned(tasks))
        assert c.orchestrator is not None
        c.orchestrator.kill()
        release.touch()
        wait_for("the agents to finish while the orchestrator is down", lambda: c.exited_agents() == 3)
        c.start_orchestrator()
        for task in tasks:
            done = c.wait_task(task.id, COMPLETED)
            assert done.retry_count == 0
            agents = c.agents_of(task.id)
            assert len(agents) == 1 and agents[0].status == agent_pb2.AGENT_STATUS_STOPPED
        stopped = {e.agent_id for e in c.events() if e.type == "agent:stopped"}
        assert {c.agents_of(t.id)[0].id for t in tasks} <= stopped
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c.diff(phase.id)) == {"t0.txt", "t1.txt", "t2.txt"}
        c.assert_invariants()


def test_restart_with_a_dead_agent(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Dead agent", c.project()), "P")
        task = c.task(phase, "t", files={"t.txt": "t"}, wait_for=str(release))
        _approve(c, phase)
        agent = wait_for("a running agent with a pid", lambda: [a for a in c.agents_of(task.id) if a.pid])[0]
        assert c.orchestrator is not None
        c.orchestrator.kill()
        os.killpg(agent.pid, signal.SIGKILL)
        release.touch()
        c.start_orchestrator()
        done = c.wait_task(task.id, COMPLETED)
        assert done.retry_count == 1
        agents = c.agents_of(task.id)
        assert [a.status for a in agents] == [agent_pb2.AGENT_STATUS_CRASHED, agent_pb2.AGENT_STATUS_STOPPED]
        c.assert_invariants()


def test_crash_retries_then_blocked_then_manual_retry(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Crashes", c.project()), "P")
        flaky = c.task(phase, "flaky", files={"flaky.txt": "ok"}, crash_times=2)
        broken = c.task(phase, "broken", files={"broken.txt": "ok"}, crash_times=4)
        _approve(c, phase)
        assert c.wait_task(flaky.id, COMPLETED).retry_count == 2
        blocked = c.wait_task(broken.id, BLOCKED)
        assert blocked.retry_count == 3
        assert len(c.agents_of(broken.id)) == 4
        assert (c.state_dir / f"attempts-{broken.id}").read_text() == "4"
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_BLOCKED)
        retried = c.orch.RetryBlockedTask(orch.RetryBlockedTaskRequest(task_id=broken.id), timeout=10)
        assert retried.retry_count == 0 and retried.status == task_pb2.TASK_STATUS_PENDING
        assert c.wait_task(broken.id, COMPLETED).retry_count == 0
        assert len(c.agents_of(broken.id)) == 5
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        try:
            c.orch.RetryBlockedTask(orch.RetryBlockedTaskRequest(task_id=broken.id), timeout=10)
            raise AssertionError("retrying a completed task must fail")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        c.assert_invariants()


def test_branch_keeps_a_crashed_attempts_commits(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Branch safety", c.project()), "P")
        task = c.task(phase, "t", files={"work.txt": "first attempt"}, commit_then_crash=True)
        _approve(c, phase)
        assert c.wait_task(task.id, COMPLETED).retry_count == 1
        second = c.agents_of(task.id)[-1]
        assert (Path(second.worktree_id) / "work.txt").read_text() == "first attempt"  # its worktree
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c.diff(phase.id)) == {"work.txt", "second-attempt-work.txt"}
        c.assert_invariants()


def test_questions_then_answers_resume_the_same_session(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Questions", c.project()), "P")
        task = c.task(phase, "t", questions=[{"id": "q1", "question": "Which database?"}])
        _approve(c, phase)
        waiting = wait_for(
            "the agent to wait for input",
            lambda: [a for a in c.agents_of(task.id) if a.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT],
        )[0]
        assert json.loads(waiting.pending_questions)[0]["id"] == "q1"
        assert c.get_task(task.id).status == task_pb2.TASK_STATUS_IN_PROGRESS
        c.assert_invariants()
        try:
            c.orch.AnswerQuestions(
                orch.AnswerQuestionsRequest(
                    agent_id=waiting.id, answers=[orch.QuestionAnswer(question_id="q9", answer="x")]
                ),
                timeout=10,
            )
            raise AssertionError("an unknown question id must be refused")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        c.orch.AnswerQuestions(
            orch.AnswerQuestionsRequest(
                agent_id=waiting.id, answers=[orch.QuestionAnswer(question_id="q1", answer="SQLite")]
            ),
            timeout=10,
        )
        assert c.wait_task(task.id, COMPLETED).summary == "answered"
        agents = c.agents_of(task.id)
        assert len(agents) == 1 and agents[0].session_id == waiting.session_id
        output = Path(agents[0].output_file_path).read_text().splitlines()
        sessions = [json.loads(line)["session_id"] for line in output if '"init"' in line]
        assert sessions == [waiting.session_id, waiting.session_id]
        chunks = c.api.log_chunks.ListLogChunks(log_chunk_pb2.ListLogChunksRequest(agent_id=waiting.id)).log_chunks
        assert {chunk.session_number for chunk in chunks} == {1, 2}
        assert "".join(chunk.content for chunk in chunks) == Path(agents[0].output_file_path).read_text()
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c.diff(phase.id)) == {"answers.txt"}
        assert any(e.type == "agent:resumed" for e in c.events())
        c.assert_invariants()


def test_max_agents_and_waiting_for_an_account(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path, max_agents=2) as c:
        account = c.api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account=account_pb2.Account(email="only@example.com", provider="scripted"))
        )
        phase = c.phase(c.initiative("Capacity", c.project()), "P")
        limited = c.task(phase, "limited", rate_limited_times=1, files={"l.txt": "l"})
        _approve(c, phase)
        wait_for(
            "the only account to be exhausted",
            lambda: c.api.accounts.GetAccount(account_pb2.GetAccountRequest(id=account.id)).is_exhausted,
        )
        waiting = c.get_task(limited.id)
        assert (waiting.status, waiting.retry_count) == (task_pb2.TASK_STATUS_PENDING, 0)
        assert len(c.agents_of(limited.id)) == 1  # no second attempt while no account is available
        c.api.accounts.UpdateAccount(
            account_pb2.UpdateAccountRequest(
                account=account_pb2.Account(id=account.id, is_exhausted=False),
                update_mask=field_mask_pb2.FieldMask(paths=["is_exhausted"]),
            )
        )
        assert c.wait_task(limited.id, COMPLETED).retry_count == 0

        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        more = [c.task(phase, f"t{i}", files={f"t{i}.txt": "x"}, wait_for=str(release)) for i in range(5)]
        wait_for("two agents running", lambda: sum(bool(c.agents_of(t.id)) for t in more) == 2)
        running = c.api.agents.ListAgents(agent_pb2.ListAgentsRequest(status=agent_pb2.AGENT_STATUS_RUNNING))
        assert len(running.agents) == 2
        release.touch()
        for task in more:
            c.wait_task(task.id, COMPLETED)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c.diff(phase.id)) == {"l.txt", *(f"t{i}.txt" for i in range(5))}
        c.assert_invariants()
