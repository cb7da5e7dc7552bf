"""Create, Get, List, Update and Delete of every resource, and their errors, through a real server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    initiative_pb2,
    message_pb2,
    page_pb2,
    phase_pb2,
    project_pb2,
    proposal_pb2,
    task_pb2,
)
from tests.support import call_error


def _initiative(api: SimpleNamespace, name: str = "User auth") -> Any:
    return api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name=name))
    )


def test_initiative_lifecycle(api: SimpleNamespace) -> None:
    created = _initiative(api)
    assert created.branch == "cw/user-auth"
    assert created.status == initiative_pb2.INITIATIVE_STATUS_ACTIVE
    assert created.create_time.seconds > 0
    fetched = api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=created.id))
    assert fetched == created
    updated = api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative_pb2.Initiative(id=created.id, status=initiative_pb2.INITIATIVE_STATUS_ARCHIVED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )
    assert updated.status == initiative_pb2.INITIATIVE_STATUS_ARCHIVED and updated.name == "User auth"
    listed = api.initiatives.ListInitiatives(
        initiative_pb2.ListInitiativesRequest(status=initiative_pb2.INITIATIVE_STATUS_ARCHIVED)
    )
    assert [i.id for i in listed.initiatives] == [created.id]
    assert not api.initiatives.ListInitiatives(
        initiative_pb2.ListInitiativesRequest(status=initiative_pb2.INITIATIVE_STATUS_ACTIVE)
    ).initiatives
    api.initiatives.DeleteInitiative(initiative_pb2.DeleteInitiativeRequest(id=created.id))
    error = call_error(api.initiatives.GetInitiative, initiative_pb2.GetInitiativeRequest(id=created.id))
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.reason == "NOT_FOUND" and error.metadata["id"] == created.id


def test_update_without_mask_sets_populated_fields(api: SimpleNamespace) -> None:
    created = _initiative(api)
    updated = api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(initiative=initiative_pb2.Initiative(id=created.id, name="Renamed"))
    )
    assert (updated.name, updated.branch, updated.status) == ("Renamed", created.branch, created.status)


def test_update_mask_can_clear_a_nullable_field(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    task = api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative.id, name="t", description="d"))
    )
    cleared = api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id), update_mask=field_mask_pb2.FieldMask(paths=["description"])
        )
    )
    assert cleared.description == ""
    error = call_error(
        api.tasks.UpdateTask,
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id), update_mask=field_mask_pb2.FieldMask(paths=["name"])
        ),
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.violations == ["task.name"]


def test_create_with_request_id_is_idempotent(api: SimpleNamespace) -> None:
    request = initiative_pb2.CreateInitiativeRequest(
        initiative=initiative_pb2.Initiative(name="Once"), request_id="3f0c8e1a-retry"
    )
    first = api.initiatives.CreateInitiative(request)
    second = api.initiatives.CreateInitiative(request)
    assert first.id == second.id
    assert len(api.initiatives.ListInitiatives(initiative_pb2.ListInitiativesRequest()).initiatives) == 1


@pytest.mark.parametrize(
    ("call", "request_message", "violation"),
    [
        ("initiatives.CreateInitiative", initiative_pb2.CreateInitiativeRequest(), "initiative.name"),
        ("initiatives.GetInitiative", initiative_pb2.GetInitiativeRequest(), "id"),
        ("phases.CreatePhase", phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(name="p")), "phase.initiative_id"),
        ("tasks.CreateTask", task_pb2.CreateTaskRequest(task=task_pb2.Task()), "task.name"),
        (
            "tasks.CreateTask",
            task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", status=99)),  # type: ignore[arg-type]
            "task.status",
        ),
        ("tasks.ListTasks", task_pb2.ListTasksRequest(page_size=-1), "page_size"),
        ("tasks.ListTasks", task_pb2.ListTasksRequest(status=42), "status"),  # type: ignore[arg-type]
        ("tasks.ListTasks", task_pb2.ListTasksRequest(page_token="not-a-token"), "page_token"),
        ("agents.CreateAgent", agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="a")), "agent.worktree_id"),
        (
            "projects.CreateProject",
            project_pb2.CreateProjectRequest(project=project_pb2.Project(name="p")),
            "project.url",
        ),
        (
            "tasks.UpdateTask",
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(id="x"), update_mask=field_mask_pb2.FieldMask(paths=["no_such_field"])
            ),
            "update_mask",
        ),
        (
            "tasks.UpdateTask",
            task_pb2.UpdateTaskRequest(task=task_pb2.Task(id="x"), update_mask=field_mask_pb2.FieldMask(paths=["id"])),
            "update_mask",
        ),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    api: SimpleNamespace, call: str, request_message: object, violation: str
) -> None:
    service, method = call.split(".")
    error = call_error(getattr(getattr(api, service), method), request_message)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violation in error.violations
    assert "Traceback" not in error.message


def test_unknown_ids_are_not_found(api: SimpleNamespace) -> None:
    for call, request in [
        (api.tasks.GetTask, task_pb2.GetTaskRequest(id="missing")),
        (api.tasks.DeleteTask, task_pb2.DeleteTaskRequest(id="missing")),
        (api.phases.GetPhase, phase_pb2.GetPhaseRequest(id="missing")),
        (api.agents.GetAgent, agent_pb2.GetAgentRequest(id="missing")),
        (
            api.tasks.UpdateTask,
            task_pb2.UpdateTaskRequest(task=task_pb2.Task(id="missing", name="n")),
        ),
    ]:
        assert call_error(call, request).code == grpc.StatusCode.NOT_FOUND


def test_duplicates_are_already_exists(api: SimpleNamespace) -> None:
    api.projects.CreateProject(project_pb2.CreateProjectRequest(project=project_pb2.Project(name="a", url="/r/a")))
    error = call_error(
        api.projects.CreateProject,
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="b", url="/r/a")),
    )
    assert error.code == grpc.StatusCode.ALREADY_EXISTS and error.metadata["field"] == "url"
    agent = agent_pb2.Agent(name="brave-otter", worktree_id="/w")
    api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent))
    error = call_error(api.agents.CreateAgent, agent_pb2.CreateAgentRequest(agent=agent))
    assert error.code == grpc.StatusCode.ALREADY_EXISTS and error.metadata["field"] == "name"


def test_foreign_key_to_missing_row_is_failed_precondition(api: SimpleNamespace) -> None:
    error = call_error(
        api.tasks.CreateTask, task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", phase_id="missing"))
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (error.reason, error.metadata["field"]) == ("MISSING_REFERENCE", "phase_id")


def test_all_resources_round_trip(api: SimpleNamespace) -> None:
    """Create, then Get, List, Update and Delete for the resources with the five standard methods."""
    initiative = _initiative(api)
    agent = api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="n", worktree_id="/w")))
    cases = [
        (api.phases, "Phase", phase_pb2, phase_pb2.Phase(initiative_id=initiative.id, name="p"), "name", "q"),
        (api.tasks, "Task", task_pb2, task_pb2.Task(initiative_id=initiative.id, name="t"), "summary", "done"),
        (api.agents, "Agent", agent_pb2, agent_pb2.Agent(name="m", worktree_id="/w", pid=7), "exit_code", 3),
        (
            api.messages,
            "Message",
            message_pb2,
            message_pb2.Message(
                sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
                recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
                content="hello",
            ),
            "content",
            "bye",
        ),
        (api.pages, "Page", page_pb2, page_pb2.Page(initiative_id=initiative.id, title="root"), "title", "Root"),
        (api.projects, "Project", project_pb2, project_pb2.Project(name="p", url="/r"), "default_branch", "dev"),
        (api.accounts, "Account", account_pb2, account_pb2.Account(email="a@x"), "sort_order", 4),
        (
            api.proposals,
            "Proposal",
            proposal_pb2,
            proposal_pb2.Proposal(
                agent_id=agent.id,
                initiative_id=initiative.id,
                target_type=proposal_pb2.PROPOSAL_TARGET_TYPE_TASK,
                title="t",
                metadata='{"k": 1}',
            ),
            "title",
            "u",
        ),
    ]
    for stub, kind, module, message, field, value in cases:
        field_name = {"Phase": "phase", "Task": "task", "Agent": "agent", "Message": "message", "Page": "page"}.get(
            kind, kind.lower()
        )
        created = getattr(stub, f"Create{kind}")(getattr(module, f"Create{kind}Request")(**{field_name: message}))
        assert len(created.id) == 21
        fetched = getattr(stub, f"Get{kind}")(getattr(module, f"Get{kind}Request")(id=created.id))
        assert fetched == created
        changed = getattr(module, kind)(id=created.id, **{field: value})
        updated = getattr(stub, f"Update{kind}")(
            getattr(module, f"Update{kind}Request")(
                **{field_name: changed}, update_mask=field_mask_pb2.FieldMask(paths=[field])
            )
        )
        assert getattr(updated, field) == value
        listed = getattr(stub, f"List{kind}s")(getattr(module, f"List{kind}sRequest")())
        assert created.id in [row.id for row in getattr(listed, f"{field_name}s")]
        getattr(stub, f"Delete{kind}")(getattr(module, f"Delete{kind}Request")(id=created.id))
        error = call_error(getattr(stub, f"Get{kind}"), getattr(module, f"Get{kind}Request")(id=created.id))
        assert error.code == grpc.StatusCode.NOT_FOUND
