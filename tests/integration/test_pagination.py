"""Keyset pagination through ListTasks: every row once, even while rows are being added."""

from __future__ import annotations

from types import SimpleNamespace

import grpc

from cw.store.v1 import initiative_pb2, task_pb2
from tests.support import RunningStore, call_error

ROWS = 2500


def _seed(store: RunningStore, initiative_id: str) -> set[str]:
    """Rows are written through the store's own unit of work: the RPC path is what is under test."""
    with store.handle.db.units.write() as uow:
        ids = {uow.tasks.create(name=f"t{i}", initiative_id=initiative_id).id for i in range(ROWS)}
        uow.commit()
    return ids


def _walk(api: SimpleNamespace, request: task_pb2.ListTasksRequest, while_paging: object = None) -> list[str]:
    seen: list[str] = []
    while True:
        page = api.tasks.ListTasks(request)
        seen += [task.id for task in page.tasks]
        if callable(while_paging):
            while_paging()
        if not page.next_page_token:
            return seen
        request.page_token = page.next_page_token


def test_walks_2500_tasks_with_no_row_missing_or_repeated(store: RunningStore, api: SimpleNamespace) -> None:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="big"))
    )
    expected = _seed(store, initiative.id)

    added: list[str] = []

    def add_one() -> None:
        added.append("x")
        api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="late", initiative_id=initiative.id)))

    default_pages = _walk(api, task_pb2.ListTasksRequest(initiative_id=initiative.id), add_one)
    assert len(default_pages) == len(set(default_pages))
    assert expected <= set(default_pages)

    big_pages = _walk(api, task_pb2.ListTasksRequest(initiative_id=initiative.id, page_size=5000))
    assert len(big_pages) == len(set(big_pages)) == ROWS + len(added)
    assert expected <= set(big_pages)


def test_page_size_defaults_and_cap(store: RunningStore, api: SimpleNamespace) -> None:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="big"))
    )
    _seed(store, initiative.id)
    assert len(api.tasks.ListTasks(task_pb2.ListTasksRequest()).tasks) == 50
    assert len(api.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=5000)).tasks) == 1000
    first = api.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=10))
    other_filter = call_error(
        api.tasks.ListTasks,
        task_pb2.ListTasksRequest(page_size=10, page_token=first.next_page_token, initiative_id=initiative.id),
    )
    assert other_filter.code == grpc.StatusCode.INVALID_ARGUMENT and other_filter.violations == ["page_token"]
