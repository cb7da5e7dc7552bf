"""Conditional writes: a stale `expected_update_time` or `expected_statuses` answers ABORTED and
changes nothing, through UpdateX and through AppendEvent; update_time is a usable etag."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import account_pb2, agent_pb2, event_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from tests.support import ErrorDetails, call_error

IN_PROGRESS, COMPLETED = task_pb2.TASK_STATUS_IN_PROGRESS, task_pb2.TASK_STATUS_COMPLETED


def _head(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def _task(api: SimpleNamespace) -> Any:
    return api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))


def _older(stamp: timestamp_pb2.Timestamp) -> timestamp_pb2.Timestamp:
    """A time one microsecond before `stamp`: what a reader saw before the latest write."""
    older = timestamp_pb2.Timestamp()
    older.CopyFrom(stamp)
    older.nanos -= 1000
    if older.nanos < 0:
        older.seconds, older.nanos = older.seconds - 1, older.nanos + 1_000_000_000
    return older


def _assert_aborted(error: ErrorDetails, row_id: str, field: str, stored: str) -> None:
    assert error.code == grpc.StatusCode.ABORTED and error.reason == "PRECONDITION_FAILED"
    assert (error.metadata["id"], error.metadata["field"], error.metadata["stored"]) == (row_id, field, stored)


def _start(task_id: str, **expected: Any) -> task_pb2.UpdateTaskRequest:
    return task_pb2.UpdateTaskRequest(
        task=task_pb2.Task(id=task_id, status=IN_PROGRESS),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        **expected,
    )


def test_update_task_with_stale_update_time_or_status_is_aborted_and_changes_nothing(api: SimpleNamespace) -> None:
    task = _task(api)
    before = _head(api)

    stale_time = call_error(api.tasks.UpdateTask, _start(task.id, expected_update_time=_older(task.update_time)))
    _assert_aborted(stale_time, task.id, "update_time", task.update_time.ToJsonString())
    assert stale_time.metadata["resource"] == "task"

    stale_status = call_error(api.tasks.UpdateTask, _start(task.id, expected_statuses=[IN_PROGRESS, COMPLETED]))
    _assert_aborted(stale_status, task.id, "status", "TASK_STATUS_PENDING")

    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)) == task
    assert _head(api) == before

    started = api.tasks.UpdateTask(
        _start(task.id, expected_update_time=task.update_time, expected_statuses=[task_pb2.TASK_STATUS_PENDING])
    )
    assert started.status == IN_PROGRESS and started.update_time.ToDatetime() > task.update_time.ToDatetime()
    replayed = call_error(api.tasks.UpdateTask, _start(task.id, expected_update_time=task.update_time))
    _assert_aborted(replayed, task.id, "update_time", started.update_time.ToJsonString())


def test_expected_statuses_are_validated_like_any_enum(api: SimpleNamespace) -> None:
    task = _task(api)
    bad = call_error(api.tasks.UpdateTask, _start(task.id, expected_statuses=[99]))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and bad.violations == ["expected_statuses[0]"]
    inside = call_error(
        api.events.AppendEvent,
        event_pb2.AppendEventRequest(
            changes=[event_pb2.StateChange(update_task=_start(task.id, expected_statuses=[IN_PROGRESS, 0]))]
        ),
    )
    assert inside.code == grpc.StatusCode.INVALID_ARGUMENT
    assert inside.violations == ["changes[0].update_task.expected_statuses[1]"]


def _initiative(api: SimpleNamespace) -> Any:
    request = initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="etag"))
    return api.initiatives.CreateInitiative(request)


# Per resource: create one, then the update that a stale precondition must stop.
_RESOURCES: dict[str, tuple[Callable[[SimpleNamespace], Any], Callable[[SimpleNamespace, Any], Any]]] = {
    "phase": (
        lambda api: api.phases.CreatePhase(
            phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=_initiative(api).id, name="p"))
        ),
        lambda api, row: api.phases.UpdatePhase(
            phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=row.id, name="changed"), **_stale(row))
        ),
    ),
    "agent": (
        lambda api: api.agents.CreateAgent(
            agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="brave-otter", worktree_id="/w"))
        ),
        lambda api, row: api.agents.UpdateAgent(
            agent_pb2.UpdateAgentRequest(agent=agent_pb2.Agent(id=row.id, pid=42), **_stale(row))
        ),
    ),
    "initiative": (
        _initiative,
        lambda api, row: api.initiatives.UpdateInitiative(
            initiative_pb2.UpdateInitiativeRequest(
                initiative=initiative_pb2.Initiative(id=row.id, name="changed"), **_stale(row)
            )
        ),
    ),
    "project": (
        lambda api: api.projects.CreateProject(
            project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url="/src/app"))
        ),
        lambda api, row: api.projects.UpdateProject(
            project_pb2.UpdateProjectRequest(project=project_pb2.Project(id=row.id, sync_error="x"), **_stale(row))
        ),
    ),
    "account": (
        lambda api: api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@example.com"))
        ),
        lambda api, row: api.accounts.UpdateAccount(
            account_pb2.UpdateAccountRequest(account=account_pb2.Account(id=row.id, sort_order=3), **_stale(row))
        ),
    ),
}


def _stale(row: Any) -> dict[str, Any]:
    return {"expected_update_time": _older(row.update_time)}


@pytest.mark.parametrize("resource", sorted(_RESOURCES))
def test_every_update_refuses_a_stale_etag(api: SimpleNamespace, resource: str) -> None:
    create, update = _RESOURCES[resource]
    row = create(api)
    before = _head(api)
    try:
        update(api, row)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ABORTED
    else:
        raise AssertionError(f"a stale {resource} update succeeded")
    assert _head(api) == before


def _append(api: SimpleNamespace, *changes: event_pb2.StateChange, event_type: str = "") -> Any:
    events = [event_pb2.Event(type=event_type)] if event_type else []
    return api.events.AppendEvent(event_pb2.AppendEventRequest(events=events, changes=list(changes)))


def test_append_event_with_a_stale_change_writes_nothing(api: SimpleNamespace) -> None:
    task, other = _task(api), _task(api)
    before = _head(api)
    request = event_pb2.AppendEventRequest(
        events=[event_pb2.Event(type="task:dispatched", task_id=task.id)],
        changes=[
            event_pb2.StateChange(update_task=_start(other.id, expected_update_time=other.update_time)),
            event_pb2.StateChange(update_task=_start(task.id, expected_statuses=[COMPLETED])),
        ],
    )
    _assert_aborted(call_error(api.events.AppendEvent, request), task.id, "status", "TASK_STATUS_PENDING")
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=other.id)) == other
    assert _head(api) == before


def test_update_time_strictly_increases_in_a_tight_loop_and_works_as_an_etag(api: SimpleNamespace) -> None:
    task = _task(api)
    etag = task.update_time
    for order in range(1, 301):
        updated = api.tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, order=order), expected_update_time=etag)
        )
        assert updated.update_time.ToDatetime() > etag.ToDatetime()
        etag = updated.update_time
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).update_time == etag

    twice = _append(
        api,
        event_pb2.StateChange(update_task=task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, order=1))),
        event_pb2.StateChange(update_task=task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, order=2))),
    )
    first, second = (row.task.update_time.ToDatetime() for row in twice.rows)
    assert etag.ToDatetime() < first < second


def test_append_event_answers_each_changed_row_and_its_last_sequence(api: SimpleNamespace) -> None:
    task = _task(api)
    project = api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url="/src/app"))
    )
    account = api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@example.com", credentials="s3cret"))
    )
    appended = _append(
        api,
        event_pb2.StateChange(update_task=_start(task.id, expected_update_time=task.update_time)),
        event_pb2.StateChange(
            create_agent=agent_pb2.CreateAgentRequest(
                agent=agent_pb2.Agent(name="brave-otter", worktree_id="/w", task_id=task.id)
            )
        ),
        event_pb2.StateChange(
            update_project=project_pb2.UpdateProjectRequest(
                project=project_pb2.Project(id=project.id, sync_error="unreachable"),
                expected_update_time=project.update_time,
            )
        ),
        event_pb2.StateChange(
            update_account=account_pb2.UpdateAccountRequest(account=account_pb2.Account(id=account.id, sort_order=2))
        ),
        event_type="task:dispatched",
    )
    assert [row.WhichOneof("row") for row in appended.rows] == ["task", "agent", "project", "account"]
    assert appended.rows[0].task == api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id))
    assert appended.rows[0].task.status == IN_PROGRESS
    assert appended.rows[1].agent.id == appended.created_ids[0] and appended.rows[1].agent.task_id == task.id
    assert appended.rows[2].project.sync_error == "unreachable"
    shown_account = appended.rows[3].account
    assert shown_account.sort_order == 2 and shown_account.has_credentials and shown_account.credentials == ""

    logged = api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=appended.last_sequence - 5)).events
    assert [e.type for e in logged] == [
        "task:updated",
        "agent:created",
        "project:updated",
        "account:updated",
        "task:dispatched",
    ]
    assert appended.last_sequence == appended.events[0].sequence == logged[-1].sequence == _head(api)

    finish = task_pb2.UpdateTaskRequest(
        task=task_pb2.Task(id=task.id, status=COMPLETED),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        expected_statuses=[IN_PROGRESS],
    )
    changes_only = _append(api, event_pb2.StateChange(update_task=finish))
    assert not changes_only.events and changes_only.rows[0].task.status == COMPLETED
    assert changes_only.last_sequence == _head(api) == appended.last_sequence + 1
    # A change that changes nothing writes no event: there is no sequence to report.
    unchanged = task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id))
    assert _append(api, event_pb2.StateChange(update_task=unchanged)).last_sequence == 0
