"""Answers stay under gRPC's 4 MB message limit however large the rows: pages stop by size as well
as by count, and a change set is capped when it is applied."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import struct_pb2

from cw.store.v1 import chat_session_pb2, event_pb2, initiative_pb2, log_chunk_pb2, task_pb2
from store_service.api import limits
from tests.support import call_error

NEAR_LIMIT = 900 * 1000


def _list_all_tasks(api: SimpleNamespace, request: task_pb2.ListTasksRequest) -> list[list[str]]:
    pages = []
    while True:
        page = api.tasks.ListTasks(request, timeout=30)
        assert page.ByteSize() <= limits.PAGE_BYTES + limits.KIB
        pages.append([task.id for task in page.tasks])
        if not page.next_page_token:
            return pages
        request.page_token = page.next_page_token


def _big_tasks(api: SimpleNamespace, count: int) -> tuple[str, list[Any]]:
    """An initiative with `count` tasks whose descriptions are near the 1 MiB limit."""
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="big"))
    )
    tasks = [
        api.tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                task=task_pb2.Task(initiative_id=initiative.id, name=f"t{n}", description=str(n) * NEAR_LIMIT)
            )
        )
        for n in range(count)
    ]
    return initiative.id, tasks


def test_five_900_kb_descriptions_no_longer_break_listing_tasks(api: SimpleNamespace) -> None:
    initiative_id, tasks = _big_tasks(api, 5)
    ids = [task.id for task in tasks]
    small = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative_id, name="s")))
    pages = _list_all_tasks(api, task_pb2.ListTasksRequest(initiative_id=initiative_id, page_size=1000))
    assert [task_id for page in pages for task_id in page] == [*ids, small.id]
    assert [len(page) for page in pages] == [3, 3]


def test_a_row_larger_than_the_rest_of_the_page_starts_the_next_one(api: SimpleNamespace) -> None:
    chunks = [
        api.log_chunks.CreateLogChunk(
            log_chunk_pb2.CreateLogChunkRequest(
                log_chunk=log_chunk_pb2.LogChunk(agent_id="a", agent_name="n", content=text)
            )
        ).id
        for text in ("x" * limits.MIB, "y" * limits.MIB, "z" * 10, "w" * limits.MIB)
    ]
    request = log_chunk_pb2.ListLogChunksRequest(agent_id="a")
    first = api.log_chunks.ListLogChunks(request, timeout=30)
    assert [chunk.id for chunk in first.log_chunks] == chunks[:3] and first.next_page_token
    request.page_token = first.next_page_token
    second = api.log_chunks.ListLogChunks(request, timeout=30)
    assert [chunk.id for chunk in second.log_chunks] == chunks[3:] and not second.next_page_token


def test_list_events_stops_by_size_and_resumes_from_last_sequence(api: SimpleNamespace) -> None:
    details = struct_pb2.Struct()
    details.update({"blob": "b" * 60_000})
    for _ in range(4):
        api.events.AppendEvent(
            event_pb2.AppendEventRequest(events=[event_pb2.Event(type="big:event", details=details)] * 20)
        )
    request = event_pb2.ListEventsRequest(types=["big:event"], page_size=1000)
    sizes = []
    while True:
        page = api.events.ListEvents(request, timeout=30)
        if not page.events:
            break
        assert page.ByteSize() <= limits.PAGE_BYTES + limits.KIB
        sizes.append(len(page.events))
        request.after_sequence = page.last_sequence
    assert sum(sizes) == 80 and len(sizes) == 2


def test_a_change_set_too_large_to_show_is_refused(api: SimpleNamespace) -> None:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="i"))
    )
    session = api.chat_sessions.CreateChatSession(
        chat_session_pb2.CreateChatSessionRequest(
            chat_session=chat_session_pb2.ChatSession(
                target_type=chat_session_pb2.CHAT_TARGET_TYPE_TASK, target_id="t", initiative_id=initiative.id
            )
        )
    )
    changes = []
    for n in range(3):
        after = struct_pb2.Struct()
        after.update({"initiativeId": initiative.id, "name": f"t{n}", "description": "d" * NEAR_LIMIT})
        changes.append(
            chat_session_pb2.ChangeSetEntry(
                entity_type=chat_session_pb2.CHANGE_ENTITY_TYPE_TASK,
                action=chat_session_pb2.CHANGE_ACTION_CREATE,
                after=after,
            )
        )
    request = chat_session_pb2.ApplyChangeSetRequest(chat_session_id=session.id, changes=changes)
    error = call_error(api.chat_sessions.ApplyChangeSet, request)
    assert (error.code, error.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "changes")
    assert not api.tasks.ListTasks(task_pb2.ListTasksRequest(initiative_id=initiative.id)).tasks


def test_an_append_whose_answer_would_not_fit_is_refused_and_changes_nothing(api: SimpleNamespace) -> None:
    _, tasks = _big_tasks(api, 4)
    changes = [
        event_pb2.StateChange(update_task=task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task.id, summary="done")))
        for task in tasks
    ]
    error = call_error(api.events.AppendEvent, event_pb2.AppendEventRequest(changes=changes))
    assert (error.code, error.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "changes")
    assert all(not api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).summary for task in tasks)
    assert api.events.AppendEvent(event_pb2.AppendEventRequest(changes=changes[:3])).rows
