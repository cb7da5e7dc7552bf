"""The facts orchestrator v2 stores (merge and queue times, reasons, merge commits, sync errors, run
outcomes) go in and come back out through the API exactly, and can be cleared."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from tests.support import call_error


def _stamp(rfc3339: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(rfc3339)
    return stamp


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _initiative_id(api: SimpleNamespace) -> str:
    request = initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="facts"))
    return str(api.initiatives.CreateInitiative(request).id)


def test_task_times_and_reason_round_trip_to_the_microsecond(api: SimpleNamespace) -> None:
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
    assert not task.HasField("merge_time") and not task.HasField("queue_time") and task.reason == ""
    facts = task_pb2.Task(
        id=task.id,
        merge_time=_stamp("2026-05-01T12:00:00.123456Z"),
        queue_time=_stamp("2026-05-01T11:00:00.000001Z"),
        next_attempt_time=_stamp("2026-05-01T13:00:00.999999Z"),
        reason="no free account",
    )
    updated = api.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task=facts))
    fetched = api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id))
    for shown in (updated, fetched):
        assert shown.merge_time == facts.merge_time and shown.queue_time == facts.queue_time
        assert shown.next_attempt_time == facts.next_attempt_time and shown.reason == "no free account"
    cleared = api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id), update_mask=_mask("merge_time", "reason"))
    )
    assert not cleared.HasField("merge_time") and cleared.reason == "" and cleared.queue_time == facts.queue_time


def test_phase_merge_commits_map_round_trips_and_clears(api: SimpleNamespace) -> None:
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=_initiative_id(api), name="p", merge_commits={"proj-a": "abc123"})
        )
    )
    assert dict(phase.merge_commits) == {"proj-a": "abc123"}
    commits = {"proj-a": "def456", "proj-b": "0123abcd"}
    updated = api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(
            phase=phase_pb2.Phase(id=phase.id, merge_commits=commits, reason="merge conflict in app")
        )
    )
    assert dict(updated.merge_commits) == commits and updated.reason == "merge conflict in app"
    assert dict(api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id)).merge_commits) == commits
    cleared = api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=phase.id), update_mask=_mask("merge_commits"))
    )
    assert dict(cleared.merge_commits) == {} and cleared.reason == "merge conflict in app"


def test_project_sync_error_round_trips(api: SimpleNamespace) -> None:
    project = api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url="/nowhere/app"))
    )
    failed = api.projects.UpdateProject(
        project_pb2.UpdateProjectRequest(
            project=project_pb2.Project(
                id=project.id, sync_error="repository not found", sync_error_time=_stamp("2026-05-02T08:30:00Z")
            )
        )
    )
    assert failed.sync_error == "repository not found" and failed.sync_error_time == _stamp("2026-05-02T08:30:00Z")
    synced = api.projects.UpdateProject(
        project_pb2.UpdateProjectRequest(project=project_pb2.Project(id=project.id), update_mask=_mask("sync_error"))
    )
    assert synced.sync_error == "" and synced.sync_error_time == _stamp("2026-05-02T08:30:00Z")


def test_agent_outcome_and_error_round_trip_and_unknown_outcome_is_refused(api: SimpleNamespace) -> None:
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="brave-otter", worktree_id="/w"))
    )
    assert agent.outcome == agent_pb2.AGENT_OUTCOME_UNSPECIFIED
    for outcome in agent_pb2.AgentOutcome.values():
        updated = api.agents.UpdateAgent(
            agent_pb2.UpdateAgentRequest(
                agent=agent_pb2.Agent(id=agent.id, outcome=outcome, error=f"run {outcome}"),
                update_mask=_mask("outcome", "error"),
            )
        )
        assert (updated.outcome, updated.error) == (outcome, f"run {outcome}")
    refused = call_error(
        api.agents.UpdateAgent,
        agent_pb2.UpdateAgentRequest(agent=agent_pb2.Agent(id=agent.id, outcome=99), update_mask=_mask("outcome")),  # type: ignore[arg-type]
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and refused.violations == ["agent.outcome"]
