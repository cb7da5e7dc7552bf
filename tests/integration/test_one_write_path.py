"""A change inside AppendEvent is written as the resource's own RPC writes it (store_service/writes/):
each case runs one write through the RPC and through AppendEvent, on a fresh store each, and both
must leave the same outcome, the one the case expects. `reopen_phase` on an update is the case that
once drifted: UpdateTask honoured it, an `update_task` inside AppendEvent did not."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import (
    account_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    task_pb2,
)
from tests.support import error_details

# A StateChange's kind -> the service and method of the RPC that makes the same write.
RPCS = {
    "create_task": ("tasks", "CreateTask"),
    "update_task": ("tasks", "UpdateTask"),
    "update_phase": ("phases", "UpdatePhase"),
    "create_message": ("messages", "CreateMessage"),
    "update_account": ("accounts", "UpdateAccount"),
    "answer_conversation": ("conversations", "AnswerConversation"),
}
Send = Callable[[str, Any], Any]


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _sender(api: SimpleNamespace, path: str) -> Send:
    """Makes one write through `path` ("rpc" or "append"): the row it leaves, or the failure as
    (code, reason, field), the field named as inside its own request."""

    def send(kind: str, request: Any) -> Any:
        try:
            if path == "rpc":
                service, method = RPCS[kind]
                return getattr(getattr(api, service), method)(request, timeout=10)
            change = event_pb2.StateChange(**{kind: request})
            answer = api.events.AppendEvent(event_pb2.AppendEventRequest(changes=[change]), timeout=10)
            row = answer.rows[0]
            return getattr(row, row.WhichOneof("row"))
        except grpc.RpcError as error:
            details = error_details(error)
            field = details.metadata.get("field", "").removeprefix(f"changes[0].{kind}.")
            return details.code, details.reason, field

    return send


def _plan(api: SimpleNamespace) -> tuple[initiative_pb2.Initiative, phase_pb2.Phase, task_pb2.Task]:
    """An initiative awaiting review, its merged (COMPLETED) phase, and a task outside the phase."""
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Plan"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="merged"))
    )
    task = api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative.id, name="outside"))
    )
    api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(
            phase=phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_COMPLETED), update_mask=_mask("status")
        )
    )
    api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative_pb2.Initiative(
                id=initiative.id, status=initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW
            ),
            update_mask=_mask("status"),
        )
    )
    return initiative, phase, task


def _reopened(api: SimpleNamespace, initiative: initiative_pb2.Initiative, phase: phase_pb2.Phase) -> tuple[str, str]:
    phase_now = api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id))
    initiative_now = api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=initiative.id))
    return (
        phase_pb2.PhaseStatus.Name(phase_now.status),
        initiative_pb2.InitiativeStatus.Name(initiative_now.status),
    )


def move_with_reopen(api: SimpleNamespace, send: Send) -> Any:
    initiative, phase, task = _plan(api)
    move = task_pb2.Task(id=task.id, phase_id=phase.id)
    moved = send("update_task", task_pb2.UpdateTaskRequest(task=move, update_mask=_mask("phase_id"), reopen_phase=True))
    return moved.phase_id == phase.id, _reopened(api, initiative, phase)


def move_without_reopen(api: SimpleNamespace, send: Send) -> Any:
    initiative, phase, task = _plan(api)
    move = task_pb2.Task(id=task.id, phase_id=phase.id)
    refused = send("update_task", task_pb2.UpdateTaskRequest(task=move, update_mask=_mask("phase_id")))
    return refused, _reopened(api, initiative, phase)


def create_with_reopen(api: SimpleNamespace, send: Send) -> Any:
    initiative, phase, _task = _plan(api)
    created = send(
        "create_task", task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="late"), reopen_phase=True)
    )
    return created.phase_id == phase.id, _reopened(api, initiative, phase)


def create_with_dependencies(api: SimpleNamespace, send: Send) -> Any:
    first = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="first")))
    bad = send(
        "create_task", task_pb2.CreateTaskRequest(task=task_pb2.Task(name="x"), depends_on_task_ids=[first.id, "nope"])
    )
    good = send("create_task", task_pb2.CreateTaskRequest(task=task_pb2.Task(name="y"), depends_on_task_ids=[first.id]))
    edges = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(task_id=good.id)).dependencies
    return bad, [edge.depends_on_task_id == first.id for edge in edges]


def create_twice_with_request_id(api: SimpleNamespace, send: Send) -> Any:
    request = task_pb2.CreateTaskRequest(task=task_pb2.Task(name="once"), request_id="retry-1")
    first, again = send("create_task", request), send("create_task", request)
    other = send("create_task", task_pb2.CreateTaskRequest(task=task_pb2.Task(name="other"), request_id="retry-1"))
    listed = api.tasks.ListTasks(task_pb2.ListTasksRequest()).tasks
    return first.id == again.id, other, [task.name for task in listed]


def update_expecting_another_status(api: SimpleNamespace, send: Send) -> Any:
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
    change = task_pb2.Task(id=task.id, name="renamed")
    stale = send(
        "update_task",
        task_pb2.UpdateTaskRequest(
            task=change, update_mask=_mask("name"), expected_statuses=[task_pb2.TASK_STATUS_IN_PROGRESS]
        ),
    )
    return stale, api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).name


def update_with_a_stale_time(api: SimpleNamespace, send: Send) -> Any:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="I"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="P"))
    )
    long_ago = timestamp_pb2.Timestamp(seconds=1)
    change = phase_pb2.Phase(id=phase.id, name="renamed")
    stale = send(
        "update_phase",
        phase_pb2.UpdatePhaseRequest(phase=change, update_mask=_mask("name"), expected_update_time=long_ago),
    )
    return stale, api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id)).name


def update_with_a_bad_provider(api: SimpleNamespace, send: Send) -> Any:
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
    change = task_pb2.Task(id=task.id, provider="no such provider!")
    return send("update_task", task_pb2.UpdateTaskRequest(task=change, update_mask=_mask("provider")))


def reply_to_a_message(api: SimpleNamespace, send: Send) -> Any:
    question = api.messages.CreateMessage(
        message_pb2.CreateMessageRequest(
            message=message_pb2.Message(
                sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
                recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
                content="which?",
                requires_response=True,
            )
        )
    )
    reply = message_pb2.Message(
        sender_type=message_pb2.PARTICIPANT_TYPE_USER,
        recipient_type=message_pb2.PARTICIPANT_TYPE_AGENT,
        content="this",
        parent_message_id=question.id,
    )
    send("create_message", message_pb2.CreateMessageRequest(message=reply))
    return message_pb2.MessageStatus.Name(api.messages.GetMessage(message_pb2.GetMessageRequest(id=question.id)).status)


def new_credentials(api: SimpleNamespace, send: Send) -> Any:
    account = api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@example.com", credentials="{}"))
    )
    api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=account.id, unusable_reason="expired"), update_mask=_mask("unusable_reason")
        )
    )
    fresh = account_pb2.Account(id=account.id, credentials='{"token": "new"}')
    updated = send("update_account", account_pb2.UpdateAccountRequest(account=fresh, update_mask=_mask("credentials")))
    return updated.unusable_reason


def answer_without_an_answer(api: SimpleNamespace, send: Send) -> Any:
    return send("answer_conversation", conversation_pb2.AnswerConversationRequest(id="c1", answer=""))


ABORTED, FAILED = grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT
CASES: list[tuple[Callable[[SimpleNamespace, Send], Any], Any]] = [
    (move_with_reopen, (True, ("PHASE_STATUS_APPROVED", "INITIATIVE_STATUS_ACTIVE"))),
    (
        move_without_reopen,
        ((FAILED, "PHASE_COMPLETED", "task.phase_id"), ("PHASE_STATUS_COMPLETED", "INITIATIVE_STATUS_PENDING_REVIEW")),
    ),
    (create_with_reopen, (True, ("PHASE_STATUS_APPROVED", "INITIATIVE_STATUS_ACTIVE"))),
    (create_with_dependencies, ((FAILED, "MISSING_REFERENCE", "depends_on_task_ids[1]"), [True])),
    (create_twice_with_request_id, (True, (FAILED, "REQUEST_ID_REUSED", "request_id"), ["once"])),
    (update_expecting_another_status, ((ABORTED, "PRECONDITION_FAILED", "status"), "t")),
    (update_with_a_stale_time, ((ABORTED, "PRECONDITION_FAILED", "update_time"), "P")),
    (update_with_a_bad_provider, (INVALID, "INVALID_ARGUMENT", "task.provider")),
    (reply_to_a_message, "MESSAGE_STATUS_RESPONDED"),
    (new_credentials, ""),
    (answer_without_an_answer, (INVALID, "INVALID_ARGUMENT", "answer")),
]


@pytest.mark.parametrize("path", ["rpc", "append"])
@pytest.mark.parametrize(("case", "expected"), CASES, ids=[case.__name__ for case, _ in CASES])
def test_a_change_in_append_event_is_written_as_its_rpc_writes_it(
    api: SimpleNamespace, path: str, case: Callable[[SimpleNamespace, Send], Any], expected: Any
) -> None:
    assert case(api, _sender(api, path)) == expected
