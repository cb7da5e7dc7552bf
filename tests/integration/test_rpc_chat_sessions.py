"""Chat sessions, their messages, and change sets that record and revert a refinement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import struct_pb2

from cw.store.v1 import agent_pb2, initiative_pb2, page_pb2, phase_pb2, task_pb2
from cw.store.v1 import chat_session_pb2 as chat
from tests.support import call_error


def _struct(**values: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _phase_update(phase_id: str, **fields: Any) -> chat.ChangeSetEntry:
    return chat.ChangeSetEntry(
        entity_type=chat.CHANGE_ENTITY_TYPE_PHASE,
        action=chat.CHANGE_ACTION_UPDATE,
        entity_id=phase_id,
        after=_struct(**fields),
    )


def _setup(api: SimpleNamespace) -> tuple[str, str, chat.ChatSession]:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="i"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="Design"))
    )
    session = api.chat_sessions.CreateChatSession(
        chat.CreateChatSessionRequest(
            chat_session=chat.ChatSession(
                target_type=chat.CHAT_TARGET_TYPE_PHASE, target_id=phase.id, initiative_id=initiative.id
            )
        )
    )
    return initiative.id, phase.id, session


def test_sessions_and_messages(api: SimpleNamespace) -> None:
    _, phase_id, session = _setup(api)
    assert session.status == chat.CHAT_SESSION_STATUS_ACTIVE
    active = api.chat_sessions.GetActiveChatSession(
        chat.GetActiveChatSessionRequest(target_type=chat.CHAT_TARGET_TYPE_PHASE, target_id=phase_id)
    )
    assert active.id == session.id
    assert api.chat_sessions.GetChatSession(chat.GetChatSessionRequest(id=session.id)) == session
    for role, text in ((chat.CHAT_ROLE_USER, "split it"), (chat.CHAT_ROLE_ASSISTANT, "done")):
        api.chat_sessions.CreateChatMessage(
            chat.CreateChatMessageRequest(
                chat_message=chat.ChatMessage(chat_session_id=session.id, role=role, content=text)
            )
        )
    messages = api.chat_sessions.ListChatMessages(chat.ListChatMessagesRequest(chat_session_id=session.id))
    assert [m.content for m in messages.chat_messages] == ["split it", "done"]
    api.chat_sessions.UpdateChatSession(
        chat.UpdateChatSessionRequest(
            chat_session=chat.ChatSession(id=session.id, status=chat.CHAT_SESSION_STATUS_CLOSED)
        )
    )
    error = call_error(
        api.chat_sessions.GetActiveChatSession,
        chat.GetActiveChatSessionRequest(target_type=chat.CHAT_TARGET_TYPE_PHASE, target_id=phase_id),
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    agent = api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="a", worktree_id="/w")))
    linked = api.chat_sessions.CreateChatSession(
        chat.CreateChatSessionRequest(
            chat_session=chat.ChatSession(
                target_type=chat.CHAT_TARGET_TYPE_PHASE,
                target_id=phase_id,
                initiative_id=session.initiative_id,
                agent_id=agent.id,
            )
        )
    )
    found = api.chat_sessions.GetActiveChatSessionByAgent(chat.GetActiveChatSessionByAgentRequest(agent_id=agent.id))
    assert found.id == linked.id
    by_agent = call_error(
        api.chat_sessions.GetActiveChatSessionByAgent, chat.GetActiveChatSessionByAgentRequest(agent_id="none")
    )
    assert by_agent.code == grpc.StatusCode.NOT_FOUND


def test_change_set_records_before_and_after_and_reverts(api: SimpleNamespace) -> None:
    initiative_id, phase_id, session = _setup(api)
    doomed = api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative_id, phase_id=phase_id, name="old"))
    )
    applied = api.chat_sessions.ApplyChangeSet(
        chat.ApplyChangeSetRequest(
            chat_session_id=session.id,
            summary="split the design phase",
            changes=[
                _phase_update(phase_id, name="Design v2"),
                chat.ChangeSetEntry(
                    entity_type=chat.CHANGE_ENTITY_TYPE_TASK,
                    action=chat.CHANGE_ACTION_CREATE,
                    after=_struct(initiativeId=initiative_id, phaseId=phase_id, name="new task"),
                ),
                chat.ChangeSetEntry(
                    entity_type=chat.CHANGE_ENTITY_TYPE_TASK, action=chat.CHANGE_ACTION_DELETE, entity_id=doomed.id
                ),
            ],
        )
    )
    assert applied.status == chat.CHANGE_SET_STATUS_APPLIED
    update, create, delete = applied.entries
    assert update.before["name"] == "Design" and update.after["name"] == "Design v2"
    assert create.entity_id and create.after["name"] == "new task" and not create.HasField("before")
    assert delete.before["name"] == "old" and not delete.HasField("after")
    assert api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase_id)).name == "Design v2"

    listed = api.chat_sessions.ListChangeSets(chat.ListChangeSetsRequest(chat_session_id=session.id))
    assert [c.id for c in listed.change_sets] == [applied.id] and len(listed.change_sets[0].entries) == 3

    reverted = api.chat_sessions.RevertChangeSet(chat.RevertChangeSetRequest(id=applied.id))
    assert reverted.status == chat.CHANGE_SET_STATUS_REVERTED
    assert api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase_id)).name == "Design"
    restored = api.tasks.GetTask(task_pb2.GetTaskRequest(id=doomed.id))
    assert restored.name == "old" and restored.create_time == doomed.create_time
    gone = call_error(api.tasks.GetTask, task_pb2.GetTaskRequest(id=create.entity_id))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    twice = call_error(api.chat_sessions.RevertChangeSet, chat.RevertChangeSetRequest(id=applied.id))
    assert (twice.code, twice.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ALREADY_REVERTED")
    assert api.chat_sessions.GetChangeSet(chat.GetChangeSetRequest(id=applied.id)).status == reverted.status


def test_revert_refuses_when_an_entity_changed_since(api: SimpleNamespace) -> None:
    _, phase_id, session = _setup(api)
    applied = api.chat_sessions.ApplyChangeSet(
        chat.ApplyChangeSetRequest(
            chat_session_id=session.id,
            changes=[_phase_update(phase_id, content="v2")],
        )
    )
    api.phases.UpdatePhase(phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=phase_id, content="by hand")))
    error = call_error(api.chat_sessions.RevertChangeSet, chat.RevertChangeSetRequest(id=applied.id))
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CHANGED_SINCE")
    assert api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase_id)).content == "by hand"


def test_change_set_is_all_or_nothing(api: SimpleNamespace) -> None:
    _, phase_id, session = _setup(api)
    error = call_error(
        api.chat_sessions.ApplyChangeSet,
        chat.ApplyChangeSetRequest(
            chat_session_id=session.id,
            changes=[
                _phase_update(phase_id, name="renamed"),
                chat.ChangeSetEntry(
                    entity_type=chat.CHANGE_ENTITY_TYPE_TASK, action=chat.CHANGE_ACTION_DELETE, entity_id="missing"
                ),
            ],
        ),
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase_id)).name == "Design"
    bad_field = call_error(
        api.chat_sessions.ApplyChangeSet,
        chat.ApplyChangeSetRequest(
            chat_session_id=session.id,
            changes=[_phase_update(phase_id, colour="red")],
        ),
    )
    assert bad_field.code == grpc.StatusCode.INVALID_ARGUMENT


def _create(entity_type: int, **fields: Any) -> chat.ChangeSetEntry:
    return chat.ChangeSetEntry(entity_type=entity_type, action=chat.CHANGE_ACTION_CREATE, after=_struct(**fields))  # type: ignore[arg-type]


def _apply(api: SimpleNamespace, session_id: str, *changes: chat.ChangeSetEntry) -> tuple[str, list[str]]:
    """Applies a change set; its id and the ids of the entities it touched."""
    applied = api.chat_sessions.ApplyChangeSet(chat.ApplyChangeSetRequest(chat_session_id=session_id, changes=changes))
    return applied.id, [entry.entity_id for entry in applied.entries]


def _revert_refused(api: SimpleNamespace, change_set_id: str, *dependents: str) -> None:
    error = call_error(api.chat_sessions.RevertChangeSet, chat.RevertChangeSetRequest(id=change_set_id))
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "HAS_DEPENDENTS")
    assert all(name in error.message and name in error.metadata["dependents"] for name in dependents)


def test_revert_refuses_to_take_rows_added_since_with_it(api: SimpleNamespace) -> None:
    """The attack: a change set creates a phase, someone adds a task to it, the revert would have
    cascade-deleted that task silently."""
    initiative_id, _, session = _setup(api)
    new_phase = _create(chat.CHANGE_ENTITY_TYPE_PHASE, initiativeId=initiative_id, name="New phase")
    new_page = _create(chat.CHANGE_ENTITY_TYPE_PAGE, initiativeId=initiative_id, title="Notes")
    change_set_id, (phase_id, page_id) = _apply(api, session.id, new_phase, new_page)
    added = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase_id, name="mine")))
    _revert_refused(api, change_set_id, added.id)
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=added.id)).phase_id == phase_id

    api.tasks.DeleteTask(task_pb2.DeleteTaskRequest(id=added.id))
    sub_page = api.pages.CreatePage(
        page_pb2.CreatePageRequest(page=page_pb2.Page(initiative_id=initiative_id, parent_page_id=page_id, title="s"))
    )
    _revert_refused(api, change_set_id, sub_page.id)

    api.pages.DeletePage(page_pb2.DeletePageRequest(id=sub_page.id))
    reverted = api.chat_sessions.RevertChangeSet(chat.RevertChangeSetRequest(id=change_set_id))
    assert reverted.status == chat.CHANGE_SET_STATUS_REVERTED


def test_revert_refuses_when_a_dependency_edge_points_at_a_created_task(api: SimpleNamespace) -> None:
    _, phase_id, session = _setup(api)
    tasks = [_create(chat.CHANGE_ENTITY_TYPE_TASK, phaseId=phase_id, name=name) for name in ("first", "second")]
    change_set_id, (first, second) = _apply(api, session.id, *tasks)
    outside = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase_id, name="later")))
    api.tasks.CreateTaskDependency(task_pb2.CreateTaskDependencyRequest(task_id=second, depends_on_task_id=first))
    api.tasks.CreateTaskDependency(task_pb2.CreateTaskDependencyRequest(task_id=outside.id, depends_on_task_id=second))
    _revert_refused(api, change_set_id, "task_dependency")
    edges = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(task_id=outside.id)).dependencies
    assert [(edge.task_id, edge.depends_on_task_id) for edge in edges] == [(outside.id, second)]


def test_a_change_set_deletes_no_task_that_edges_point_at(api: SimpleNamespace) -> None:
    """Deleting it would have dropped the edge with it, and a revert would not bring it back."""
    _, phase_id, session = _setup(api)
    first, second = (
        api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase_id, name=name)))
        for name in ("first", "second")
    )
    api.tasks.CreateTaskDependency(task_pb2.CreateTaskDependencyRequest(task_id=second.id, depends_on_task_id=first.id))
    delete = chat.ChangeSetEntry(
        entity_type=chat.CHANGE_ENTITY_TYPE_TASK, action=chat.CHANGE_ACTION_DELETE, entity_id=first.id
    )
    error = call_error(
        api.chat_sessions.ApplyChangeSet, chat.ApplyChangeSetRequest(chat_session_id=session.id, changes=[delete])
    )
    assert (error.reason, error.code) == ("HAS_CHILDREN", grpc.StatusCode.FAILED_PRECONDITION)
    assert "task_dependency" in error.metadata["dependents"]
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=first.id)).name == "first"
