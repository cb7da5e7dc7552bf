"""The Python SDK against real services: typed methods, typed errors, retries, resumable events."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from clients.sdk import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OrchestratorClient,
    StoreClient,
    UnavailableError,
)
from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import cluster, make_git_repo, script, wait_for


def test_sdk_drives_a_phase_to_review(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.store is not None and c.orchestrator is not None
        store, orchestrator = (
            StoreClient(c.store.address, token_file=c.client_token_file),
            OrchestratorClient(c.orchestrator.address, token_file=c.client_token_file),
        )
        project = store.create_project("svc", str(make_git_repo(tmp_path / "svc")))
        assert store.find_project("svc").id == project.id and store.list_projects() == [project]
        initiative = store.create_initiative("SDK", [project.id])
        assert store.initiative_projects(initiative.id) == [project]
        assert [i.id for i in store.list_initiatives()] == [initiative.id]
        phase = store.create_phase(initiative.id, "P")
        later = store.create_phase(initiative.id, "Q", after=[phase.id])
        first = store.create_task(phase.id, "one", description=script(files={"one.txt": "1"}), priority="high")
        store.create_task(phase.id, "two", description=script(files={"two.txt": "2"}), after=[first.id])
        assert first.priority == task_pb2.TASK_PRIORITY_HIGH and first.initiative_id == initiative.id
        assert [p.id for p in store.list_phases(initiative.id)] == [phase.id, later.id]
        assert orchestrator.approve_phase(phase.id).status == phase_pb2.PHASE_STATUS_APPROVED
        events = store.watch_events(types=["phase:pending_review"])
        assert next(events).phase_id == phase.id
        assert {f.path for f in orchestrator.phase_diff(phase.id).projects[0].files} == {"one.txt", "two.txt"}
        assert len(store.list_tasks(phase_id=phase.id, status="completed")) == 2
        agent = store.list_agents(task_id=first.id)[0]
        assert store.get_agent(agent.id).name == agent.name
        assert b'"init"' in b"".join(orchestrator.agent_output(agent.id))
        assert orchestrator.merge_phase(phase.id).status == phase_pb2.PHASE_STATUS_COMPLETED
        types = {e.type for e in store.list_events(types=["phase:completed", "task:completed"])}
        assert types == {"phase:completed", "task:completed"}
        account = store.create_account("a@x", "nobody", "secret-credentials")
        assert store.list_accounts() == [account] and account.has_credentials

        with pytest.raises(NotFoundError) as missing:
            store.get_task("missing")
        assert missing.value.reason == "NOT_FOUND" and missing.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(InvalidArgumentError) as invalid:
            store.create_task(phase.id, "")
        assert invalid.value.violations[0][0] == "task.name"
        with pytest.raises(FailedPreconditionError) as refused:
            orchestrator.retry_blocked_task(first.id)
        assert refused.value.reason == "TASK_NOT_BLOCKED"
        with pytest.raises(InvalidArgumentError):
            store.list_tasks(status="sideways")


def test_retries_a_store_that_comes_back_after_sigkill(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.store is not None
        store = StoreClient(c.store.address, token_file=c.client_token_file)
        task = store.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
        c.store.kill()
        restarting = threading.Thread(target=c.start_store)
        restarting.start()
        try:
            assert store.get_task(task.id).id == task.id  # UNAVAILABLE is retried until the store is back
        finally:
            restarting.join()


def test_event_iterator_resumes_across_a_dropped_stream(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.store is not None and c.orchestrator is not None
        store = StoreClient(c.store.address, token_file=c.client_token_file)
        for name in ("a", "b", "c"):
            store.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name=name)))
        orchestrator = OrchestratorClient(c.orchestrator.address, token_file=c.client_token_file)
        events = orchestrator.events()
        received = [next(events).sequence for _ in range(3)]
        c.store.kill()  # the orchestrator's stream from the store drops, and so does ours
        c.start_store()
        for name in ("d", "e"):
            store.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name=name)))
        received += [next(events).sequence for _ in range(2)]
        assert received == [1, 2, 3, 4, 5]


def test_sdk_questions_stop_and_retry(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.store is not None and c.orchestrator is not None
        store, orchestrator = (
            StoreClient(c.store.address, token_file=c.client_token_file),
            OrchestratorClient(c.orchestrator.address, token_file=c.client_token_file),
        )
        store.ensure_reachable()
        orchestrator.ensure_reachable()
        project = store.create_project("q", str(make_git_repo(tmp_path / "q")))
        initiative = store.create_initiative("Questions", [project.id])
        assert store.get_initiative(initiative.id).name == "Questions"
        phase = store.create_phase(initiative.id, "P")
        assert store.get_phase(phase.id).initiative_id == initiative.id
        asking = store.create_task(phase.id, "ask", description=script(questions=[{"id": "q1", "question": "?"}]))
        stuck = store.create_task(phase.id, "stuck", description=script(wait_for=str(tmp_path / "never")))
        orchestrator.approve_phase(phase.id)
        waiting = next(
            a
            for a in wait_for("a question", lambda: store.list_agents(status="waiting_for_input"))
            if a.task_id == asking.id
        )
        assert orchestrator.answer_questions(waiting.id, {"q1": "yes"}).status == agent_pb2.AGENT_STATUS_RUNNING
        running = wait_for("the stuck agent", lambda: store.list_agents(status="running", task_id=stuck.id))[0]
        assert orchestrator.stop_agent(running.id).status == agent_pb2.AGENT_STATUS_STOPPED
        assert store.get_task(stuck.id).status == task_pb2.TASK_STATUS_BLOCKED
        assert orchestrator.retry_blocked_task(stuck.id).retry_count == 0
        wait_for("the retried task's agent", lambda: len(store.list_agents(task_id=stuck.id)) == 2)
        with pytest.raises(UnavailableError):
            StoreClient("127.0.0.1:9", token_file=c.client_token_file).ensure_reachable(timeout=0.5)
