"""The store's share of the trust boundary, each written as the attack or the bad input that used
to get through (or to answer UNKNOWN): unsafe names, urls and branches, inconsistent rows, bad
timestamps, unknown enum numbers, NaN in details, malformed bytes, errors that leak paths."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    chat_session_pb2,
    event_pb2,
    initiative_pb2,
    page_pb2,
    phase_pb2,
    project_pb2,
    task_pb2,
)
from store_service.db.models import RequestRecord
from store_service.db.reads import Reads
from tests.support import ErrorDetails, RunningStore, call_error

BAD_TIMESTAMPS = [(-(10**12), 0), (10**12, 0), (5, -1), (5, 1_000_000_000)]


def _invalid(call: Any, request: Any, field: str) -> ErrorDetails:
    error = call_error(call, request)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    assert error.violations[0] == field and error.metadata["field"] == field
    return error


def _refused(call: Any, request: Any, reason: str, field: str) -> ErrorDetails:
    error = call_error(call, request)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, reason), error.message
    assert error.metadata["field"] == field
    return error


def _mismatched(call: Any, request: Any, field: str) -> ErrorDetails:
    return _refused(call, request, "INITIATIVE_MISMATCH", field)


def _initiative(api: SimpleNamespace, name: str = "i", branch: str = "") -> Any:
    initiative = initiative_pb2.Initiative(name=name, branch=branch)
    return api.initiatives.CreateInitiative(initiative_pb2.CreateInitiativeRequest(initiative=initiative))


def _phase(api: SimpleNamespace, initiative_id: str) -> Any:
    phase = phase_pb2.Phase(initiative_id=initiative_id, name="p")
    return api.phases.CreatePhase(phase_pb2.CreatePhaseRequest(phase=phase))


def _task(api: SimpleNamespace, **fields: Any) -> Any:
    return api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", **fields)))


def _update_task(**fields: Any) -> task_pb2.UpdateTaskRequest:
    mask = field_mask_pb2.FieldMask(paths=[name for name in fields if name != "id"])
    return task_pb2.UpdateTaskRequest(task=task_pb2.Task(**fields), update_mask=mask)


def _page(api: SimpleNamespace, initiative_id: str, parent: str = "") -> Any:
    page = page_pb2.Page(initiative_id=initiative_id, parent_page_id=parent, title="p")
    return api.pages.CreatePage(page_pb2.CreatePageRequest(page=page))


def _update_page(page_id: str, **fields: Any) -> page_pb2.UpdatePageRequest:
    return page_pb2.UpdatePageRequest(
        page=page_pb2.Page(id=page_id, **fields), update_mask=field_mask_pb2.FieldMask(paths=list(fields))
    )


def _create_project(api: SimpleNamespace, name: str, url: str) -> Any:
    return api.projects.CreateProject(project_pb2.CreateProjectRequest(project=project_pb2.Project(name=name, url=url)))


@pytest.mark.parametrize("name", ["../../../../../../var/x", "/var/y", ".git", "-n", "a/b"])
def test_path_like_project_names_are_refused(api: SimpleNamespace, name: str) -> None:
    _invalid(
        api.projects.CreateProject,
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name=name, url="/srv/app")),
        "project.name",
    )
    project = _create_project(api, "app", "/srv/app")
    renamed = project_pb2.UpdateProjectRequest(project=project_pb2.Project(id=project.id, name=name))
    _invalid(api.projects.UpdateProject, renamed, "project.name")
    assert [p.name for p in api.projects.ListProjects(project_pb2.ListProjectsRequest()).projects] == ["app"]


def test_option_like_url_never_gets_stored(api: SimpleNamespace) -> None:
    error = _invalid(
        api.projects.CreateProject,
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="x", url="--upload-pack=touch pwned://x")),
        "project.url",
    )
    assert "option" in error.message
    _invalid(
        api.projects.CreateProject,
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="x", url="srv/app", default_branch="-b")),
        "project.url",
    )
    assert not api.projects.ListProjects(project_pb2.ListProjectsRequest()).projects


def test_a_trailing_slash_does_not_make_another_project(api: SimpleNamespace) -> None:
    first = _create_project(api, "app", "/srv/app")
    error = call_error(
        api.projects.CreateProject,
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app2", url="/srv/app/")),
    )
    assert (error.code, error.metadata["field"]) == (grpc.StatusCode.ALREADY_EXISTS, "url")
    assert _create_project(api, "other", "/srv//other/./").url == "/srv/other"
    assert first.url == "/srv/app"


def test_default_branch_is_a_git_branch_name(api: SimpleNamespace) -> None:
    project = project_pb2.Project(name="x", url="/srv/x", default_branch="--orphan")
    _invalid(api.projects.CreateProject, project_pb2.CreateProjectRequest(project=project), "project.default_branch")


@pytest.mark.parametrize(
    ("call", "request_message", "field"),
    [
        (
            "initiatives.CreateInitiative",
            initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="n" * 250)),
            "initiative.name",
        ),
        ("tasks.CreateTask", task_pb2.CreateTaskRequest(task=task_pb2.Task(name="n" * 250)), "task.name"),
        (
            "phases.CreatePhase",
            phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id="i", name="n" * 250)),
            "phase.name",
        ),
        (
            "pages.CreatePage",
            page_pb2.CreatePageRequest(page=page_pb2.Page(initiative_id="i", title="n" * 250)),
            "page.title",
        ),
        (
            "agents.CreateAgent",
            agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="n" * 250, worktree_id="w")),
            "agent.name",
        ),
    ],
)
def test_250_character_names_are_refused(api: SimpleNamespace, call: str, request_message: Any, field: str) -> None:
    service, method = call.split(".")
    error = _invalid(getattr(getattr(api, service), method), request_message, field)
    assert "at most 200 characters" in error.message


def test_a_task_cannot_be_its_own_parent_or_ancestor(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    top = _task(api, initiative_id=initiative.id)
    child = _task(api, initiative_id=initiative.id, parent_task_id=top.id)
    grandchild = _task(api, initiative_id=initiative.id, parent_task_id=child.id)
    _invalid(api.tasks.UpdateTask, _update_task(id=top.id, parent_task_id=top.id), "task.parent_task_id")
    _refused(
        api.tasks.UpdateTask,
        _update_task(id=top.id, parent_task_id=grandchild.id),
        "PARENT_CYCLE",
        "task.parent_task_id",
    )
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=top.id)).parent_task_id == ""


def test_a_subtask_stays_in_its_parents_initiative(api: SimpleNamespace) -> None:
    first, second = _initiative(api, "a"), _initiative(api, "b")
    parent = _task(api, initiative_id=first.id)
    error = call_error(
        api.tasks.CreateTask,
        task_pb2.CreateTaskRequest(task=task_pb2.Task(name="s", initiative_id=second.id, parent_task_id=parent.id)),
    )
    assert error.reason == "INITIATIVE_MISMATCH"
    _task(api, initiative_id=first.id, parent_task_id=parent.id)
    _mismatched(api.tasks.UpdateTask, _update_task(id=parent.id, initiative_id=second.id), "task.initiative_id")


def test_a_page_cannot_be_its_own_parent_nor_under_its_descendant(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    root = _page(api, initiative.id)
    child = _page(api, initiative.id, root.id)
    grandchild = _page(api, initiative.id, child.id)
    _invalid(api.pages.UpdatePage, _update_page(child.id, parent_page_id=child.id), "page.parent_page_id")
    _refused(
        api.pages.UpdatePage, _update_page(root.id, parent_page_id=grandchild.id), "PARENT_CYCLE", "page.parent_page_id"
    )


def test_a_page_cannot_hang_under_a_page_of_another_initiative(api: SimpleNamespace) -> None:
    first, second = _initiative(api, "a"), _initiative(api, "b")
    foreign_root = _page(api, first.id)
    error = call_error(
        api.pages.CreatePage,
        page_pb2.CreatePageRequest(
            page=page_pb2.Page(initiative_id=second.id, parent_page_id=foreign_root.id, title="x")
        ),
    )
    assert (error.reason, error.metadata["field"]) == ("INITIATIVE_MISMATCH", "page.parent_page_id")
    child = _page(api, first.id, foreign_root.id)
    _mismatched(api.pages.UpdatePage, _update_page(child.id, initiative_id=second.id), "page.parent_page_id")
    _mismatched(api.pages.UpdatePage, _update_page(foreign_root.id, initiative_id=second.id), "page.initiative_id")


def test_a_task_phase_and_initiative_must_agree(api: SimpleNamespace) -> None:
    first, second = _initiative(api, "a"), _initiative(api, "b")
    phase_of_first = _phase(api, first.id)
    error = call_error(
        api.tasks.CreateTask,
        task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", phase_id=phase_of_first.id, initiative_id=second.id)),
    )
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INITIATIVE_MISMATCH")
    assert error.metadata["field"] == "task.initiative_id"
    task = _task(api, phase_id=phase_of_first.id)
    _mismatched(api.tasks.UpdateTask, _update_task(id=task.id, initiative_id=second.id), "task.initiative_id")


def test_a_task_given_only_a_phase_takes_its_initiative_and_its_events_carry_it(api: SimpleNamespace) -> None:
    first, second = _initiative(api, "a"), _initiative(api, "b")
    phase_of_first, phase_of_second = _phase(api, first.id), _phase(api, second.id)
    task = _task(api, phase_id=phase_of_first.id)
    assert task.initiative_id == first.id
    events = api.events.ListEvents(event_pb2.ListEventsRequest(initiative_id=first.id, types=["task:created"])).events
    assert [event.task_id for event in events] == [task.id]
    moved = api.tasks.UpdateTask(_update_task(id=task.id, phase_id=phase_of_second.id))
    assert (moved.phase_id, moved.initiative_id) == (phase_of_second.id, second.id)
    updates = api.events.ListEvents(event_pb2.ListEventsRequest(initiative_id=second.id, types=["task:updated"]))
    assert [event.task_id for event in updates.events] == [task.id]


def test_a_phase_with_tasks_stays_in_its_initiative(api: SimpleNamespace) -> None:
    first, second = _initiative(api, "a"), _initiative(api, "b")
    phase = _phase(api, first.id)
    _task(api, phase_id=phase.id)
    moved = phase_pb2.UpdatePhaseRequest(
        phase=phase_pb2.Phase(id=phase.id, initiative_id=second.id),
        update_mask=field_mask_pb2.FieldMask(paths=["initiative_id"]),
    )
    _refused(api.phases.UpdatePhase, moved, "INITIATIVE_MISMATCH", "phase.initiative_id")


@pytest.mark.parametrize("branch", ["HEAD", "main", "master", "refs/heads/main", "cw-task/x", "cw-phase/y", "main/x"])
def test_initiative_branches_outside_gits_and_cws_own_names(api: SimpleNamespace, branch: str) -> None:
    _invalid(
        api.initiatives.CreateInitiative,
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="i", branch=branch)),
        "initiative.branch",
    )
    initiative = _initiative(api)
    _invalid(
        api.initiatives.UpdateInitiative,
        initiative_pb2.UpdateInitiativeRequest(initiative=initiative_pb2.Initiative(id=initiative.id, branch=branch)),
        "initiative.branch",
    )


def test_initiative_branch_never_takes_a_projects_default_branch(api: SimpleNamespace) -> None:
    api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="a", url="/srv/a", default_branch="develop"))
    )
    error = _invalid(
        api.initiatives.CreateInitiative,
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="i", branch="develop")),
        "initiative.branch",
    )
    assert "default branch" in error.message


def _nan_details() -> struct_pb2.Struct:
    details = struct_pb2.Struct()
    details.update({"cost": float("nan"), "tokens": float("inf")})
    return details


def test_nan_in_event_details_is_invalid_argument(api: SimpleNamespace) -> None:
    request = event_pb2.AppendEventRequest(events=[event_pb2.Event(type="agent:spawned", details=_nan_details())])
    error = _invalid(api.events.AppendEvent, request, "events[0].details.cost")
    assert error.violations == ["events[0].details.cost", "events[0].details.tokens"]
    head = api.events.ListEvents(event_pb2.ListEventsRequest()).head_sequence
    assert not api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=0, types=["agent:spawned"])).events
    assert head == api.events.ListEvents(event_pb2.ListEventsRequest()).head_sequence


def _with_time(message: Any, field: str, seconds: int, nanos: int) -> Any:
    stamp = getattr(message, field)
    stamp.seconds, stamp.nanos = seconds, nanos
    return message


@pytest.mark.parametrize(("seconds", "nanos"), BAD_TIMESTAMPS)
def test_timestamps_out_of_range_are_invalid_argument(api: SimpleNamespace, seconds: int, nanos: int) -> None:
    account = _with_time(account_pb2.Account(email="a@x"), "exhausted_until", seconds, nanos)
    _invalid(api.accounts.CreateAccount, account_pb2.CreateAccountRequest(account=account), "account.exhausted_until")
    agent = _with_time(agent_pb2.Agent(name="a", worktree_id="w"), "user_dismiss_time", seconds, nanos)
    _invalid(api.agents.CreateAgent, agent_pb2.CreateAgentRequest(agent=agent), "agent.user_dismiss_time")
    project = _with_time(project_pb2.Project(id="p", name="p"), "last_fetch_time", seconds, nanos)
    _invalid(api.projects.UpdateProject, project_pb2.UpdateProjectRequest(project=project), "project.last_fetch_time")
    until = _with_time(account_pb2.MarkAccountExhaustedRequest(id="a"), "until", seconds, nanos)
    _invalid(api.accounts.MarkAccountExhausted, until, "until")
    event = _with_time(event_pb2.Event(type="x"), "time", seconds, nanos)
    change = event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=agent))
    _invalid(api.events.AppendEvent, event_pb2.AppendEventRequest(events=[event]), "events[0].time")
    _invalid(
        api.events.AppendEvent,
        event_pb2.AppendEventRequest(events=[event_pb2.Event(type="x")], changes=[change]),
        "changes[0].create_agent.agent.user_dismiss_time",
    )


def test_unknown_enum_numbers_are_invalid_argument(api: SimpleNamespace) -> None:
    _invalid(
        api.chat_sessions.GetActiveChatSession,
        chat_session_pb2.GetActiveChatSessionRequest(target_type=9, target_id="x"),  # type: ignore[arg-type]
        "target_type",
    )
    entry = chat_session_pb2.ChangeSetEntry(entity_type=9, action=chat_session_pb2.CHANGE_ACTION_CREATE)  # type: ignore[arg-type]
    _invalid(
        api.chat_sessions.ApplyChangeSet,
        chat_session_pb2.ApplyChangeSetRequest(chat_session_id="s", changes=[entry]),
        "changes[0].entity_type",
    )
    _invalid(api.tasks.ListTasks, task_pb2.ListTasksRequest(statuses=[1, 42]), "statuses[1]")  # type: ignore[list-item]
    _invalid(api.agents.ListAgents, agent_pb2.ListAgentsRequest(status=42), "status")  # type: ignore[arg-type]


def test_change_set_entries_are_checked_like_the_entities(api: SimpleNamespace) -> None:
    after = struct_pb2.Struct()
    after.update({"name": "n" * 300})
    entry = chat_session_pb2.ChangeSetEntry(
        entity_type=chat_session_pb2.CHANGE_ENTITY_TYPE_TASK, action=chat_session_pb2.CHANGE_ACTION_CREATE, after=after
    )
    request = chat_session_pb2.ApplyChangeSetRequest(chat_session_id="s", changes=[entry])
    _invalid(api.chat_sessions.ApplyChangeSet, request, "changes[0].after.name")
    request.changes[0].after.Clear()
    request.changes[0].after.update({"order": float("nan")})
    _invalid(api.chat_sessions.ApplyChangeSet, request, "changes[0].after.order")


def test_bytes_that_are_no_request_are_invalid_argument(store: RunningStore) -> None:
    with store.channel() as channel:
        raw = channel.unary_unary("/cw.store.v1.TaskService/GetTask")
        with pytest.raises(grpc.RpcError) as raised:
            raw(b"\x0a\x02\xff\xfe", timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_unexpected_failure_is_internal_and_names_no_server_path(
    store: RunningStore, api: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_self: object, _model: object, _row_id: str) -> None:
        raise OSError(f"disk I/O error in {store.home / 'store.db'}")

    # GetTask reads its row through the read side (store_service/db/reads.py).
    monkeypatch.setattr(Reads, "stored", broken)
    with pytest.raises(grpc.RpcError) as raised:
        api.tasks.GetTask(task_pb2.GetTaskRequest(id="x"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert str(store.home) not in (raised.value.details() or "")
    assert "/" not in (raised.value.details() or "")


def test_not_found_names_no_server_path(store: RunningStore, api: SimpleNamespace) -> None:
    error = call_error(api.tasks.GetTask, task_pb2.GetTaskRequest(id="x"))
    assert str(store.home) not in error.message + repr(error.metadata)


def test_a_replayed_request_id_with_another_payload_is_refused(api: SimpleNamespace) -> None:
    first = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Once"), request_id="r-1")
    )
    again = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Once"), request_id="r-1")
    )
    assert again == first
    other = initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Other"), request_id="r-1")
    error = _refused(api.initiatives.CreateInitiative, other, "REQUEST_ID_REUSED", "request_id")
    assert "request_id" in error.message
    names = [i.name for i in api.initiatives.ListInitiatives(initiative_pb2.ListInitiativesRequest()).initiatives]
    assert names == ["Once"]


def test_a_request_id_remembered_before_payloads_were_hashed_still_replays(
    store: RunningStore, api: SimpleNamespace
) -> None:
    """Records written before migration 0003 have no payload hash: their replays are trusted."""
    first = _initiative(api, "Old")
    with store.handle.db.units.write() as uow:
        uow.session.add(
            RequestRecord(
                request_id="legacy", method="CreateInitiativeRequest", resource_id=first.id, payload_hash=None
            )
        )
        uow.commit()
    replay = initiative_pb2.CreateInitiativeRequest(
        initiative=initiative_pb2.Initiative(name="Old"), request_id="legacy"
    )
    assert api.initiatives.CreateInitiative(replay).id == first.id


def test_change_sets_and_chat_messages_honour_request_ids(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    session = api.chat_sessions.CreateChatSession(
        chat_session_pb2.CreateChatSessionRequest(
            chat_session=chat_session_pb2.ChatSession(
                target_type=chat_session_pb2.CHAT_TARGET_TYPE_TASK, target_id="t", initiative_id=initiative.id
            )
        )
    )
    after = struct_pb2.Struct()
    after.update({"initiativeId": initiative.id, "name": "from chat"})
    create = chat_session_pb2.ChangeSetEntry(
        entity_type=chat_session_pb2.CHANGE_ENTITY_TYPE_TASK, action=chat_session_pb2.CHANGE_ACTION_CREATE, after=after
    )
    apply = chat_session_pb2.ApplyChangeSetRequest(chat_session_id=session.id, changes=[create], request_id="cs-1")
    first = api.chat_sessions.ApplyChangeSet(apply)
    assert api.chat_sessions.ApplyChangeSet(apply) == first
    assert len(api.tasks.ListTasks(task_pb2.ListTasksRequest(initiative_id=initiative.id)).tasks) == 1
    apply.summary = "something else"
    _refused(api.chat_sessions.ApplyChangeSet, apply, "REQUEST_ID_REUSED", "request_id")

    message = chat_session_pb2.CreateChatMessageRequest(
        chat_message=chat_session_pb2.ChatMessage(
            chat_session_id=session.id, role=chat_session_pb2.CHAT_ROLE_USER, content="hi"
        ),
        request_id="m-1",
    )
    assert api.chat_sessions.CreateChatMessage(message) == api.chat_sessions.CreateChatMessage(message)
    listed = api.chat_sessions.ListChatMessages(chat_session_pb2.ListChatMessagesRequest(chat_session_id=session.id))
    assert len(listed.chat_messages) == 1


def test_phases_of_two_initiatives_cannot_depend_on_each_other(api: SimpleNamespace) -> None:
    first, second = _phase(api, _initiative(api, "a").id), _phase(api, _initiative(api, "b").id)
    edge = phase_pb2.CreatePhaseDependencyRequest(phase_id=first.id, depends_on_phase_id=second.id)
    _mismatched(api.phases.CreatePhaseDependency, edge, "depends_on_phase_id")
