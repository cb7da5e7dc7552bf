"""Change events carry their values: a follower builds each row from the log alone.

On both databases: the `<entity>:created` event of every resource carries the row as its Get
answers it, and its `<entity>:updated` event the changed fields' new values, which applied to the
row give the Get answer after the update; a value too large for the event is left out and named;
a secret never reaches the log.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from google.protobuf import field_mask_pb2, json_format
from google.protobuf.message import Message

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    message_pb2,
    page_pb2,
    phase_pb2,
    project_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)
from store_service.db.event_values import DETAILS_BYTES

SECRET_CREDENTIALS = "credentials-that-must-never-be-logged"
SECRET_CONFIG = '{"config": "that-must-never-be-logged"}'


def _events(api: SimpleNamespace, after: int = 0) -> list[event_pb2.Event]:
    return list(api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=after, page_size=1000)).events)


def _head(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def _details(event: event_pb2.Event) -> dict[str, Any]:
    return json_format.MessageToDict(event.details)


def _the_event(api: SimpleNamespace, after: int, event_type: str, row_id: str) -> dict[str, Any]:
    found = [_details(e) for e in _events(api, after) if e.type == event_type and _details(e)["id"] == row_id]
    assert len(found) == 1, (event_type, found)
    return found[0]


def _applied(row: Message, values: dict[str, Any]) -> Message:
    """What a follower does with an update's values: each named field replaced, null clears it."""
    after = type(row)()
    after.CopyFrom(row)
    for name in values:
        after.ClearField(name)
    json_format.ParseDict({k: v for k, v in values.items() if v is not None}, after)
    return after


def _from_values(message_type: type[Message], values: dict[str, Any]) -> Message:
    return json_format.ParseDict(values, message_type())


def _resources(api: SimpleNamespace) -> list[tuple[Any, str, Any, Message, str | None, Any]]:
    """(stub, kind, module, message to create, a field to update, its new value) of each resource."""
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="i"))
    )
    agent = api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="n", worktree_id="/w")))
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="p0"))
    )
    return [
        (api.initiatives, "Initiative", initiative_pb2, initiative_pb2.Initiative(name="j"), "name", "k"),
        (api.phases, "Phase", phase_pb2, phase_pb2.Phase(initiative_id=initiative.id, name="p"), "name", "q"),
        (
            api.tasks,
            "Task",
            task_pb2,
            task_pb2.Task(initiative_id=initiative.id, name="t", description="d", reason="r"),
            "summary",
            "done",
        ),
        (
            api.agents,
            "Agent",
            agent_pb2,
            agent_pb2.Agent(name="m", worktree_id="/w", pid=7, usage=agent_pb2.Usage(input_tokens=5)),
            "usage",
            agent_pb2.Usage(cost_usd=2),
        ),
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
            "metadata",
            '{"k": 2}',
        ),
        (
            api.conversations,
            "Conversation",
            conversation_pb2,
            conversation_pb2.Conversation(from_agent_id=agent.id, to_agent_id=agent.id, question="why?"),
            None,
            None,
        ),
        (
            api.review_comments,
            "ReviewComment",
            review_comment_pb2,
            review_comment_pb2.ReviewComment(
                phase_id=phase.id,
                file_path="a.py",
                line_number=3,
                line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED,
                body="no",
            ),
            None,
            None,
        ),
    ]


def _field_name(kind: str) -> str:
    return "review_comment" if kind == "ReviewComment" else kind.lower()


def test_every_resource_s_events_carry_its_values(api: SimpleNamespace) -> None:
    for stub, kind, module, message, field, value in _resources(api):
        entity = _field_name(kind)
        before = _head(api)
        created = getattr(stub, f"Create{kind}")(getattr(module, f"Create{kind}Request")(**{entity: message}))
        fetched = getattr(stub, f"Get{kind}")(getattr(module, f"Get{kind}Request")(id=created.id))
        details = _the_event(api, before, f"{entity}:created", created.id)
        assert "omitted" not in details, kind
        assert _from_values(type(fetched), details["values"]) == fetched, kind
        if field is None:
            continue
        before = _head(api)
        changed = getattr(module, kind)(id=created.id, **{field: value})
        request = getattr(module, f"Update{kind}Request")(
            **{entity: changed}, update_mask=field_mask_pb2.FieldMask(paths=[field])
        )
        getattr(stub, f"Update{kind}")(request)
        after = getattr(stub, f"Get{kind}")(getattr(module, f"Get{kind}Request")(id=created.id))
        details = _the_event(api, before, f"{entity}:updated", created.id)
        assert set(details["values"]) == {field, "update_time"}, kind
        assert _applied(fetched, details["values"]) == after, kind


def test_an_update_that_clears_a_field_carries_null(api: SimpleNamespace) -> None:
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", reason="stuck")))
    before = _head(api)
    api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_BLOCKED),
            update_mask=field_mask_pb2.FieldMask(paths=["reason", "status"]),
        )
    )
    details = _the_event(api, before, "task:updated", task.id)
    assert details["values"]["reason"] is None
    assert details["values"]["status"] == "TASK_STATUS_BLOCKED"
    after = api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id))
    assert _applied(task, details["values"]) == after


def test_a_value_too_large_for_the_event_is_left_out_and_named(api: SimpleNamespace) -> None:
    large = "x" * (DETAILS_BYTES + 1)
    before = _head(api)
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", description=large)))
    details = _the_event(api, before, "task:created", task.id)
    assert details["omitted"] == ["description"]
    assert details["values"]["name"] == "t"
    before = _head(api)
    api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id, description=large + "y", summary="s"),
            update_mask=field_mask_pb2.FieldMask(paths=["description", "summary"]),
        )
    )
    (event,) = [e for e in _events(api, before) if e.type == "task:updated"]
    assert event.details.ByteSize() <= DETAILS_BYTES
    details = _details(event)
    assert details["omitted"] == ["description"]
    assert details["values"]["summary"] == "s"


def test_no_secret_reaches_the_log(api: SimpleNamespace) -> None:
    created = api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(
            account=account_pb2.Account(email="a@x", credentials=SECRET_CREDENTIALS, config_json=SECRET_CONFIG)
        )
    )
    api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, credentials=SECRET_CREDENTIALS + "2"),
            update_mask=field_mask_pb2.FieldMask(paths=["credentials"]),
        )
    )
    api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id),
            update_mask=field_mask_pb2.FieldMask(paths=["config_json"]),
        )
    )
    events = [e for e in _events(api) if e.type.startswith("account:")]
    assert [e.type for e in events] == ["account:created", "account:updated", "account:updated"]
    for event in events:
        shown = event.SerializeToString()
        assert b"must-never-be-logged" not in shown
        assert SECRET_CREDENTIALS.encode() not in shown
    first, second, third = (_details(e)["values"] for e in events)
    assert first["has_credentials"] is True and first["has_config"] is True
    assert "credentials" not in first and "config_json" not in first
    assert set(second) == {"has_credentials", "update_time"}
    assert third["has_config"] is None  # cleared: false
