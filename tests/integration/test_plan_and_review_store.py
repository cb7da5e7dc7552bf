"""The store's side of review and repair: creates with their dependencies in one transaction, merged
phases reopened on purpose only, edits refused while an agent works, conversations and comments
listed, and the creates the orchestrator appends with its events."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from cw.store.v1 import (
    agent_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    project_pb2,
    review_comment_pb2,
    task_pb2,
)
from tests.support import call_error

FAILED = grpc.StatusCode.FAILED_PRECONDITION


def _initiative(api: SimpleNamespace) -> initiative_pb2.Initiative:
    return api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Plan"))
    )


def _phase(api: SimpleNamespace, initiative_id: str, name: str = "P") -> phase_pb2.Phase:
    return api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative_id, name=name))
    )


def _task(api: SimpleNamespace, phase: phase_pb2.Phase, name: str = "t", **request: object) -> task_pb2.Task:
    task = task_pb2.Task(phase_id=phase.id, name=name)
    return api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task, **request))  # type: ignore[arg-type]


def _set_status(api: SimpleNamespace, row: object, status: Any) -> None:
    """As the orchestrator would (the `api` fixture's identity)."""
    if isinstance(row, phase_pb2.Phase):
        api.phases.UpdatePhase(
            phase_pb2.UpdatePhaseRequest(
                phase=phase_pb2.Phase(id=row.id, status=status), update_mask=field_mask_pb2.FieldMask(paths=["status"])
            )
        )
    else:
        assert isinstance(row, initiative_pb2.Initiative)
        api.initiatives.UpdateInitiative(
            initiative_pb2.UpdateInitiativeRequest(
                initiative=initiative_pb2.Initiative(id=row.id, status=status),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            )
        )


def test_a_bad_dependency_creates_nothing(client_api: SimpleNamespace) -> None:
    api = client_api
    initiative = _initiative(api)
    phase = _phase(api, initiative.id)
    first = _task(api, phase, "first")
    bad = call_error(
        api.tasks.CreateTask,
        task_pb2.CreateTaskRequest(
            task=task_pb2.Task(phase_id=phase.id, name="second"), depends_on_task_ids=[first.id, "nope"]
        ),
    )
    assert (bad.code, bad.reason, bad.metadata["field"]) == (FAILED, "MISSING_REFERENCE", "depends_on_task_ids[1]")
    assert [t.name for t in api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase.id)).tasks] == ["first"]
    second = _task(api, phase, "second", depends_on_task_ids=[first.id])
    edges = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(task_id=second.id)).dependencies
    assert [(e.task_id, e.depends_on_task_id) for e in edges] == [(second.id, first.id)]

    bad_phase = call_error(
        api.phases.CreatePhase,
        phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative.id, name="later"), depends_on_phase_ids=["ghost"]
        ),
    )
    assert (bad_phase.reason, bad_phase.metadata["field"]) == ("MISSING_REFERENCE", "depends_on_phase_ids[0]")
    phases = api.phases.ListPhases(phase_pb2.ListPhasesRequest(initiative_id=initiative.id)).phases
    assert [p.name for p in phases] == ["P"]
    later = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative.id, name="later"), depends_on_phase_ids=[phase.id]
        )
    )
    deps = api.phases.ListPhaseDependencies(phase_pb2.ListPhaseDependenciesRequest(phase_id=later.id)).phases
    assert [p.id for p in deps] == [phase.id]


def test_a_merged_phase_takes_a_task_only_when_reopened(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    merged = _phase(api, initiative.id, "merged")
    moving = client_api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative.id, name="moving"))
    )
    _set_status(api, merged, phase_pb2.PHASE_STATUS_COMPLETED)
    _set_status(api, initiative, initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW)
    refused = call_error(
        client_api.tasks.CreateTask, task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=merged.id, name="late"))
    )
    assert (refused.code, refused.reason, refused.metadata["field"]) == (FAILED, "PHASE_COMPLETED", "task.phase_id")
    assert "--reopen" in refused.message
    move = task_pb2.UpdateTaskRequest(
        task=task_pb2.Task(id=moving.id, phase_id=merged.id), update_mask=field_mask_pb2.FieldMask(paths=["phase_id"])
    )
    assert call_error(client_api.tasks.UpdateTask, move).reason == "PHASE_COMPLETED"

    late = _task(client_api, merged, "late", reopen_phase=True)
    assert client_api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=merged.id)).status == phase_pb2.PHASE_STATUS_APPROVED
    again = client_api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=initiative.id))
    assert again.status == initiative_pb2.INITIATIVE_STATUS_ACTIVE and late.phase_id == merged.id
    done = task_pb2.Task(id=late.id, status=task_pb2.TASK_STATUS_COMPLETED, merge_time=late.create_time)
    api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(task=done, update_mask=field_mask_pb2.FieldMask(paths=["status", "merge_time"]))
    )
    _set_status(api, merged, phase_pb2.PHASE_STATUS_COMPLETED)
    move.reopen_phase = True
    assert client_api.tasks.UpdateTask(move).phase_id == merged.id


def test_edits_wait_while_an_agent_works(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    project = client_api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url="/srv/app"))
    )
    client_api.projects.SetInitiativeProjects(
        project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative.id, project_ids=[project.id])
    )
    phase = _phase(api, initiative.id)
    task = _task(api, phase)
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(
            agent=agent_pb2.Agent(
                name="busy-otter",
                worktree_id="/w",
                task_id=task.id,
                initiative_id=initiative.id,
                status=agent_pb2.AGENT_STATUS_RUNNING,
            )
        )
    )
    rename_task = task_pb2.UpdateTaskRequest(
        task=task_pb2.Task(id=task.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
    )
    rename_phase = phase_pb2.UpdatePhaseRequest(
        phase=phase_pb2.Phase(id=phase.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
    )
    rename_project = project_pb2.UpdateProjectRequest(
        project=project_pb2.Project(id=project.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
    )
    refusals = [
        (client_api.tasks.UpdateTask, rename_task),
        (client_api.tasks.DeleteTask, task_pb2.DeleteTaskRequest(id=task.id)),
        (client_api.phases.UpdatePhase, rename_phase),
        (client_api.phases.DeletePhase, phase_pb2.DeletePhaseRequest(id=phase.id)),
        (client_api.projects.UpdateProject, rename_project),
        (client_api.projects.DeleteProject, project_pb2.DeleteProjectRequest(id=project.id)),
    ]
    for call, request in refusals:
        refused = call_error(call, request)
        assert (refused.code, refused.reason, refused.metadata["agents"]) == (FAILED, "AGENT_WORKING", "busy-otter")
    assert api.tasks.UpdateTask(rename_task).name == "renamed"  # the orchestrator settles agents
    api.agents.UpdateAgent(
        agent_pb2.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, status=agent_pb2.AGENT_STATUS_STOPPED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )
    assert client_api.phases.UpdatePhase(rename_phase).name == "renamed"
    client_api.tasks.DeleteTask(task_pb2.DeleteTaskRequest(id=task.id))
    client_api.projects.DeleteProject(project_pb2.DeleteProjectRequest(id=project.id))


def test_conversations_and_comments_are_listed_by_what_people_ask(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    phase = _phase(api, initiative.id)
    asker, answerer = (
        api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name=name, worktree_id="/w")))
        for name in ("ask-er", "answer-er")
    )
    for question in ("one", "two"):
        api.conversations.CreateConversation(
            conversation_pb2.CreateConversationRequest(
                conversation=conversation_pb2.Conversation(
                    from_agent_id=asker.id, to_agent_id=answerer.id, initiative_id=initiative.id, question=question
                )
            )
        )
    listed = api.conversations.ListConversations(conversation_pb2.ListConversationsRequest(initiative_id=initiative.id))
    assert [c.question for c in listed.conversations] == ["one", "two"]
    api.conversations.AnswerConversation(
        conversation_pb2.AnswerConversationRequest(id=listed.conversations[0].id, answer="yes")
    )
    pending = api.conversations.ListConversations(
        conversation_pb2.ListConversationsRequest(
            from_agent_id=asker.id, status=conversation_pb2.CONVERSATION_STATUS_PENDING
        )
    )
    assert [c.question for c in pending.conversations] == ["two"]

    comments = [
        api.review_comments.CreateReviewComment(
            review_comment_pb2.CreateReviewCommentRequest(
                review_comment=review_comment_pb2.ReviewComment(
                    phase_id=phase.id,
                    file_path="a.txt",
                    line_number=line,
                    line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED,
                    body=f"line {line}",
                )
            )
        )
        for line in (1, 2)
    ]
    api.review_comments.ResolveReviewComment(review_comment_pb2.ResolveReviewCommentRequest(id=comments[0].id))
    for resolved, expected in ((True, [comments[0].id]), (False, [comments[1].id])):
        request = review_comment_pb2.ListReviewCommentsRequest(phase_id=phase.id, resolved=resolved)
        assert [c.id for c in api.review_comments.ListReviewComments(request).review_comments] == expected


def test_appended_creates_keep_their_request_id_and_fail_whole(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    phase = _phase(api, initiative.id)
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="lone-wolf", worktree_id="/w"))
    )
    create = task_pb2.CreateTaskRequest(
        task=task_pb2.Task(phase_id=phase.id, name="merge", category=task_pb2.TASK_CATEGORY_MERGE), request_id="m-1"
    )
    message = message_pb2.CreateMessageRequest(
        message=message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
            sender_id=agent.id,
            recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
            content="hello",
        )
    )
    answers = [
        api.events.AppendEvent(
            event_pb2.AppendEventRequest(
                changes=[event_pb2.StateChange(create_task=create), event_pb2.StateChange(create_message=message)]
            )
        )
        for _ in range(2)
    ]
    assert answers[0].created_ids[0] == answers[1].created_ids[0] == answers[0].rows[0].task.id
    assert (
        answers[0].rows[1].message.content == "hello" and answers[0].rows[1].message.id != answers[1].rows[1].message.id
    )
    assert len(api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase.id)).tasks) == 1

    asked = api.conversations.CreateConversation(
        conversation_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(from_agent_id=agent.id, to_agent_id=agent.id, question="?")
        )
    )
    answer = event_pb2.StateChange(
        answer_conversation=conversation_pb2.AnswerConversationRequest(id=asked.id, answer="!")
    )
    rename = event_pb2.StateChange(
        update_phase=phase_pb2.UpdatePhaseRequest(
            phase=phase_pb2.Phase(id=phase.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
        )
    )
    done = api.events.AppendEvent(event_pb2.AppendEventRequest(changes=[answer]))
    assert done.rows[0].conversation.status == conversation_pb2.CONVERSATION_STATUS_ANSWERED
    twice = call_error(api.events.AppendEvent, event_pb2.AppendEventRequest(changes=[rename, answer]))
    assert (twice.code, twice.reason) == (FAILED, "ALREADY_ANSWERED")
    assert api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id)).name == "P"


@pytest.mark.parametrize(
    ("field", "value"),
    [("review_comment_ids", ["c1"]), ("resolved_comment_ids", ["c1"]), ("merge_source_task_id", "t")],
)
def test_a_person_cannot_forge_the_orchestrator_s_review_facts(
    client_api: SimpleNamespace, field: str, value: object
) -> None:
    initiative = _initiative(client_api)
    task = task_pb2.Task(initiative_id=initiative.id, name="forged")
    if isinstance(value, list):
        getattr(task, field).extend(value)
    else:
        setattr(task, field, value)
    refused = call_error(client_api.tasks.CreateTask, task_pb2.CreateTaskRequest(task=task))
    assert (refused.code, refused.metadata["field"]) == (grpc.StatusCode.PERMISSION_DENIED, f"task.{field}")


def test_a_person_writes_messages_as_the_user(client_api: SimpleNamespace) -> None:
    forged = message_pb2.Message(
        sender_type=message_pb2.PARTICIPANT_TYPE_AGENT, recipient_type=message_pb2.PARTICIPANT_TYPE_USER, content="x"
    )
    refused = call_error(client_api.messages.CreateMessage, message_pb2.CreateMessageRequest(message=forged))
    assert (refused.code, refused.metadata["field"]) == (grpc.StatusCode.PERMISSION_DENIED, "message.sender_type")
    forged.sender_type = message_pb2.PARTICIPANT_TYPE_USER
    assert client_api.messages.CreateMessage(message_pb2.CreateMessageRequest(message=forged)).content == "x"
