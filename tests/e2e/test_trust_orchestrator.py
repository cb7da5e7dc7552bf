"""Attacks on the orchestrator through the rows it reads, written as the attacks. The store now refuses these
rows from clients; here they are forged with the orchestrator's own token (as anyone who got hold
of the database could), to show the orchestrator takes no path, ref or pid from data."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import agent_pb2, phase_pb2
from cw_edge.tokens import Identity
from orchestrator_service.agents import process
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import clone_source
from tests.e2e.cluster import SCRIPTED, Cluster, cluster, wait_for
from tests.support import stubs

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not cw's, leading its own group, with a convincing shim.json about it in a
    directory outside the workspace."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    outside = tmp_path / "elsewhere"
    (outside / "work").mkdir(parents=True)
    (outside / "shim.json").write_text(json.dumps({"pid": victim.pid, "start_time": process.start_time(victim.pid)}))
    yield victim
    victim.kill()
    victim.wait(10)


def _as_orchestrator(c: Cluster) -> object:
    assert c.store is not None
    return stubs(c._channel(c.store.address, Identity.ORCHESTRATOR))


def _forged_agent(
    c: Cluster, tmp_path: Path, status: agent_pb2.AgentStatus.ValueType, **fields: object
) -> agent_pb2.Agent:
    phase = c.phase(c.initiative("Forged", c.project()), "P")
    task = c.task(phase, "t")
    agent = agent_pb2.Agent(
        name="forged-agent",
        task_id=task.id,
        worktree_id=str(tmp_path / "elsewhere" / "work"),
        output_file_path=str(tmp_path / "elsewhere" / "output.jsonl"),
        status=status,
        provider="scripted",
        session_id="s",
        **fields,  # type: ignore[arg-type]
    )
    api = _as_orchestrator(c)
    return api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent))  # type: ignore[attr-defined]


def test_a_forged_agent_row_never_gets_a_foreign_process_signalled(
    tmp_path: Path, foreign: subprocess.Popen[bytes]
) -> None:
    with cluster(tmp_path) as c:
        forged = _forged_agent(c, tmp_path, agent_pb2.AGENT_STATUS_RUNNING, pid=foreign.pid)
        stopped = c.orch.StopAgent(orch.StopAgentRequest(agent_id=forged.id), timeout=30)
        assert stopped.status == agent_pb2.AGENT_STATUS_STOPPED
        assert foreign.poll() is None, "StopAgent signalled a process cw never started"


def test_a_forged_running_agent_is_settled_without_touching_anything_outside(
    tmp_path: Path, foreign: subprocess.Popen[bytes]
) -> None:
    with cluster(tmp_path) as c:
        forged = _forged_agent(c, tmp_path, agent_pb2.AGENT_STATUS_RUNNING, pid=foreign.pid)

        def settled() -> agent_pb2.Agent | None:
            agent = c.api.agents.GetAgent(agent_pb2.GetAgentRequest(id=forged.id))
            return agent if agent.status != agent_pb2.AGENT_STATUS_RUNNING else None

        wait_for("the forged agent to be settled", settled, timeout=90)
        assert foreign.poll() is None, "settling the forged agent killed a process cw never started"
        assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["shim.json", "work"]


def test_answering_a_forged_agent_writes_nothing_outside_the_workspace(tmp_path: Path) -> None:
    questions = json.dumps([{"id": "q1", "question": "?"}])
    (tmp_path / "elsewhere" / "work").mkdir(parents=True)
    with cluster(tmp_path) as c:
        forged = _forged_agent(c, tmp_path, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT, pending_questions=questions)
        try:
            c.orch.AnswerQuestions(
                orch.AnswerQuestionsRequest(
                    agent_id=forged.id, answers=[orch.QuestionAnswer(question_id="q1", answer="x")]
                ),
                timeout=30,
            )
        except grpc.RpcError as error:
            assert error.code() != grpc.StatusCode.UNKNOWN
        assert list((tmp_path / "elsewhere").rglob("*")) == [tmp_path / "elsewhere" / "work"]
        assert (tmp_path / "workspace" / "agents" / forged.id).is_dir()


def test_the_empty_tree_as_merge_base_shows_nothing(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Leak", c.project()), "P")
        c.task(phase, "t", files={"t.txt": "t"})
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        api = _as_orchestrator(c)
        api.phases.UpdatePhase(  # type: ignore[attr-defined]
            phase_pb2.UpdatePhaseRequest(
                phase=phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_COMPLETED, merge_base=EMPTY_TREE),
                update_mask=field_mask_pb2.FieldMask(paths=["status", "merge_base"]),
            )
        )
        with pytest.raises(grpc.RpcError) as refused:
            c.orch.GetPhaseDiff(orch.GetPhaseDiffRequest(phase_id=phase.id), timeout=30)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "README.md" not in (refused.value.details() or "")
        assert str(tmp_path) not in (refused.value.details() or "")


def test_a_url_never_reaches_git_as_an_option(tmp_path: Path) -> None:
    for url in ("--upload-pack=touch pwned://x", "-c", "-"):
        with pytest.raises(GitError):
            clone_source(url)
    assert clone_source("relative/dir") == str(Path("relative/dir").resolve())
    assert not Path("pwned").exists()


def test_a_path_like_project_name_forged_into_the_database_stops_only_its_initiative(tmp_path: Path) -> None:
    """The store refuses such a name at the edge; written straight into the database, the
    orchestrator still refuses to make it a path, and other initiatives go on."""
    c = Cluster(tmp_path, [f"scripted={SCRIPTED}"])
    try:
        c.start_store()
        bad = c.project("bad")
        forged = c.phase(c.initiative("Forged", bad), "P")
        c.task(forged, "t", files={"t.txt": "t"})
        fine = c.phase(c.initiative("Fine", c.project("good")), "P")
        c.task(fine, "t", files={"t.txt": "t"})
        with sqlite3.connect(tmp_path / "store.db") as database:
            database.execute("UPDATE projects SET name = ? WHERE id = ?", ("../../../../escaped", bad.id))
        c.start_orchestrator()
        for phase in (forged, fine):
            c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        c.wait_phase(fine.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)

        def explained() -> phase_pb2.Phase | None:
            phase = c.get_phase(forged.id)
            return phase if "not a single safe path component" in phase.reason else None

        wait_for("the forged project's phase to say why it waits", explained)
        assert not list(tmp_path.parent.glob("**/escaped"))
    finally:
        c.close()
