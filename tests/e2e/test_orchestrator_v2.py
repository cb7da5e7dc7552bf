"""Orchestrator v2 end to end: one broken object never stalls the rest, facts survive kill -9,
stale writes are re-decided, one owner per workspace and port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import agent_pb2, log_chunk_pb2, phase_pb2, project_pb2, task_pb2
from cw_edge.tokens import Identity
from orchestrator_service.api.servicer import MAX_FORWARDED_STREAMS
from tests.e2e.cluster import Cluster, cluster, cw, cw_json, make_git_repo, script, wait_for
from tests.support import call_error, error_details, stubs

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW


def _approve(c: Cluster, *phases: phase_pb2.Phase) -> None:
    for phase in phases:
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)


def _project(c: Cluster, name: str, url: str) -> project_pb2.Project:
    return c.api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name=name, url=url))
    )


def _get_project(c: Cluster, project_id: str) -> project_pb2.Project:
    return c.api.projects.GetProject(project_pb2.GetProjectRequest(id=project_id), timeout=10)


def test_an_unreachable_project_blocks_only_its_own_initiative(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        ghost = _project(c, "ghost", str(tmp_path / "nowhere" / "app"))
        broken = c.phase(c.initiative("Broken", ghost), "P")
        waiting = c.task(broken, "w", files={"w.txt": "w"})
        fine = c.phase(c.initiative("Fine", c.project("good")), "P")
        done = c.task(fine, "d", files={"d.txt": "d"})
        _approve(c, broken, fine)

        c.wait_phase(fine.id, REVIEW)
        assert c.get_task(done.id).status == COMPLETED

        def explained() -> phase_pb2.Phase | None:
            phase = c.get_phase(broken.id)
            return phase if phase.reason else None

        stuck = wait_for("the broken phase's reason", explained)
        assert stuck.status == phase_pb2.PHASE_STATUS_APPROVED and "ghost" in stuck.reason
        assert "cannot be synced" in stuck.reason and str(tmp_path / "workspace") not in stuck.reason
        assert _get_project(c, ghost.id).sync_error
        assert any(e.type == "project:sync_failed" and e.details["project_id"] == ghost.id for e in c.events())
        # ...and through the CLI, as a person sees it.
        listed = {project["name"]: project for project in cw_json(c, "project", "list")}
        assert "does not exist" in listed["ghost"]["syncError"]
        assert "cannot be synced" in cw(c, "initiative", "show", broken.initiative_id).stdout

        repo = make_git_repo(tmp_path / "user" / "ghost-found")
        c.api.projects.UpdateProject(
            project_pb2.UpdateProjectRequest(
                project=project_pb2.Project(id=ghost.id, url=str(repo)),
                update_mask=field_mask_pb2.FieldMask(paths=["url"]),
            )
        )
        c.wait_phase(broken.id, REVIEW)
        assert c.get_task(waiting.id).status == COMPLETED
        assert not _get_project(c, ghost.id).sync_error and not c.get_phase(broken.id).reason
        assert any(e.type == "project:synced" for e in c.events())
        c.assert_invariants()


def test_starts_and_serves_whatever_is_wrong_with_one_row(tmp_path: Path) -> None:
    running = Cluster(
        tmp_path, [f"scripted={sys.executable} {Path(__file__).parents[1] / 'fixtures/agents/scripted.py'}"]
    )
    try:
        running.start_store()
        c = running
        ghost = _project(c, "ghost", str(tmp_path / "missing"))
        broken = c.phase(c.initiative("Broken", ghost), "P")
        c.task(broken, "never")
        c.api.phases.UpdatePhase(  # approved through the store, as a person may
            phase_pb2.UpdatePhaseRequest(
                phase=phase_pb2.Phase(id=broken.id, status=phase_pb2.PHASE_STATUS_APPROVED),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            )
        )
        phase = c.phase(c.initiative("Big rows", c.project()), "P")
        padding = "\n" + "x" * 900_000
        big = [c.task(phase, f"big{i}", files={f"big{i}.txt": "b"}) for i in range(5)]
        for task in big:
            c.api.tasks.UpdateTask(
                task_pb2.UpdateTaskRequest(
                    task=task_pb2.Task(id=task.id, description=task.description + padding),
                    update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                )
            )
        loud = c.task(phase, "loud", files={"loud.txt": "l"}, output_bytes=10 * 1024 * 1024)

        c.start_orchestrator()
        _approve(c, phase)
        c.wait_phase(phase.id, REVIEW, timeout=120)
        agent = c.agents_of(loud.id)[0]
        assert agent.outcome == agent_pb2.AGENT_OUTCOME_DONE
        chunks: list[log_chunk_pb2.LogChunk] = []
        request = log_chunk_pb2.ListLogChunksRequest(agent_id=agent.id, page_size=4)
        while True:
            page = c.api.log_chunks.ListLogChunks(request, timeout=30)
            chunks += page.log_chunks
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        assert sum(len(chunk.content) for chunk in chunks) >= 10 * 1024 * 1024
        assert c.get_phase(broken.id).status == phase_pb2.PHASE_STATUS_APPROVED
        c.assert_invariants()
    finally:
        running.close()


def _another_orchestrator(c: Cluster, listen: str, workspace: Path) -> subprocess.CompletedProcess[str]:
    assert c.store is not None
    arguments = ["--store", c.store.address, "--listen", listen, "--workspace", str(workspace)]
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_service", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_orchestrator_per_workspace_and_port(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.store is not None and c.orchestrator is not None
        same_workspace = _another_orchestrator(c, "127.0.0.1:0", tmp_path / "workspace")
        assert same_workspace.returncode != 0
        assert "is held by another orchestrator" in same_workspace.stderr
        assert f"pid {c.orchestrator.process.pid}" in same_workspace.stderr
        same_port = _another_orchestrator(c, c.orchestrator.address, tmp_path / "other")
        assert same_port.returncode != 0
        assert f"cannot listen on {c.orchestrator.address}" in same_port.stderr


def test_a_task_changed_while_its_agent_works_is_settled_from_the_stored_row(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Stale", c.project()), "P")
        task = c.task(phase, "t", files={"t.txt": "t"}, wait_for=str(release))
        _approve(c, phase)
        wait_for("a running agent", lambda: c.all_spawned([task]))
        rename = task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
        )
        refused = call_error(c.api.tasks.UpdateTask, rename)  # a person's edit waits for the agent
        assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "AGENT_WORKING")
        assert c.store is not None
        other_writer = stubs(c._channel(c.store.address, Identity.ORCHESTRATOR))
        other_writer.tasks.UpdateTask(rename)  # the row changes under the orchestrator's settlement
        release.touch()
        done = c.wait_task(task.id, COMPLETED)
        assert done.name == "renamed" and done.retry_count == 0
        c.wait_phase(phase.id, REVIEW)
        c.assert_invariants()


def test_kill_between_the_git_merge_and_its_record(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator(faults="after-git-merge")
        phase = c.phase(c.initiative("Merge crash", c.project()), "P")
        tasks = [c.task(phase, f"t{i}", files={f"t{i}.txt": str(i)}) for i in range(2)]
        _approve(c, phase)
        dying = c.orchestrator
        assert dying is not None
        wait_for("the orchestrator to die right after a merge", lambda: dying.process.poll() is not None)
        c.start_orchestrator()
        c.wait_phase(phase.id, REVIEW)
        for task in tasks:
            assert c.get_task(task.id).HasField("merge_time")
        merges = subprocess.run(
            ["git", "log", "--merges", "--oneline", f"cw-phase/{phase.id}"],
            cwd=next((tmp_path / "workspace" / "repos").iterdir()),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert len(merges) == 2, merges  # each task merged exactly once
        c.assert_invariants()


def test_a_run_that_never_started_spends_no_attempt(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator(faults="before-spawn")
        phase = c.phase(c.initiative("Never started", c.project()), "P")
        task = c.task(phase, "t", files={"t.txt": "t"})
        _approve(c, phase)
        dying = c.orchestrator
        assert dying is not None
        wait_for("the orchestrator to die after recording the agent", lambda: dying.process.poll() is not None)
        c.start_orchestrator()
        done = c.wait_task(task.id, COMPLETED, timeout=90)
        assert done.retry_count == 0
        first, second = c.agents_of(task.id)
        assert first.outcome == agent_pb2.AGENT_OUTCOME_NEVER_STARTED and not first.pid
        assert second.outcome == agent_pb2.AGENT_OUTCOME_DONE
        c.assert_invariants()


def test_a_queued_task_stays_queued_across_a_kill(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        initiative = c.initiative("Loose", c.project())
        task = c.api.tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                task=task_pb2.Task(initiative_id=initiative.id, name="loose", description=script(files={"l.txt": "l"}))
            )
        )
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator()
        queued = c.orch.DispatchTask(orch.DispatchTaskRequest(task_id=task.id), timeout=10)
        assert queued.HasField("queue_time")
        c.orchestrator.kill()
        c.start_orchestrator()
        assert c.wait_task(task.id, COMPLETED).retry_count == 0
        c.assert_invariants()


def test_a_provider_named_by_a_relative_path_runs(tmp_path: Path) -> None:
    """The README's own example: a script path relative to where the orchestrator starts."""
    script_path = Path(__file__).parents[1] / "fixtures" / "agents" / "scripted.py"
    relative = os.path.relpath(script_path, Path.cwd())
    with cluster(tmp_path, [f"mine={sys.executable} {relative}"]) as c:
        phase = c.phase(c.initiative("Relative", c.project()), "P")
        task = c.task(phase, "t", files={"t.txt": "t"})
        _approve(c, phase)
        assert c.wait_task(task.id, COMPLETED).retry_count == 0


def test_a_missing_provider_program_waits_with_its_reason(tmp_path: Path) -> None:
    with cluster(tmp_path, ["ghost=/nowhere/ghost-agent"]) as c:
        phase = c.phase(c.initiative("Ghost", c.project()), "P")
        task = c.task(phase, "t")
        _approve(c, phase)

        def waiting() -> task_pb2.Task | None:
            current = c.get_task(task.id)
            return current if "not found" in current.reason else None

        waited = wait_for("the task to say why it waits", waiting)
        assert waited.status == task_pb2.TASK_STATUS_PENDING and waited.retry_count == 0
        assert not c.agents_of(task.id)
        assert "program '/nowhere/ghost-agent' not found" in (tmp_path / "orchestrator.log").read_text()


def test_worktrees_go_once_the_phase_is_merged_and_the_records_stay(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Tidy", c.project()), "P")
        task = c.task(phase, "t", files={"t.txt": "t"})
        _approve(c, phase)
        c.wait_phase(phase.id, REVIEW)
        control = tmp_path / "workspace" / "agents" / c.agents_of(task.id)[0].id
        task_dir = tmp_path / "workspace" / "tasks" / task.id
        assert (task_dir / "app" / "t.txt").exists()  # still there for the review
        c.orch.MergePhase(orch.MergePhaseRequest(phase_id=phase.id), timeout=30)
        assert not (task_dir / "app").exists() and not task_dir.exists()
        assert (control / "output.jsonl").exists() and (control / "prompt.md").exists()


def test_a_phase_without_projects_cannot_be_approved(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Nowhere"), "P")
        with pytest.raises(grpc.RpcError) as refused:
            c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(refused.value).reason == "NO_PROJECTS"
        assert c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING


def test_stream_events_sends_heartbeats_at_the_asked_interval(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        head = c.events()[-1].sequence if c.events() else 0
        request = orch.StreamEventsRequest(
            after_sequence=head, heartbeat_interval=duration_pb2.Duration(nanos=100_000_000)
        )
        stream = c.orch.StreamEvents(request, timeout=10)
        beat = next(stream)
        stream.cancel()
        assert beat.type == "heartbeat" and beat.sequence == 0


def test_stream_events_are_capped_so_callers_cannot_use_up_the_orchestrators_streams(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        request = orch.StreamEventsRequest(heartbeat_interval=duration_pb2.Duration(seconds=5))
        streams = [c.orch.StreamEvents(request, timeout=60) for _ in range(MAX_FORWARDED_STREAMS)]
        try:
            for stream in streams:
                next(stream)  # open: the first event of the log
            with pytest.raises(grpc.RpcError) as refused:
                next(c.orch.StreamEvents(request, timeout=30))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            streams.pop().cancel()
            wait_for("a slot to free up", lambda: _opens(c, request))
        finally:
            for stream in streams:
                stream.cancel()


def _opens(c: Cluster, request: orch.StreamEventsRequest) -> bool:
    stream = c.orch.StreamEvents(request, timeout=30)
    try:
        next(stream)
        return True
    except grpc.RpcError:
        return False
    finally:
        stream.cancel()
