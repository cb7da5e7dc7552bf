"""The reads keep the messages of rows they showed (store_service/api/shown_rows.py): a row that
changed is never shown as it was, however it changed."""

from __future__ import annotations

from types import SimpleNamespace

from google.protobuf import field_mask_pb2
from sqlalchemy import text

from cw.store.v1 import initiative_pb2, task_pb2
from tests.support import RunningStore


def _shown_names(api: SimpleNamespace, initiative_id: str, task_id: str) -> tuple[set[str], str]:
    listed = api.tasks.ListTasks(task_pb2.ListTasksRequest(initiative_id=initiative_id))
    return {task.name for task in listed.tasks}, api.tasks.GetTask(task_pb2.GetTaskRequest(id=task_id)).name


def test_an_updated_row_is_listed_and_got_as_it_now_is(store: RunningStore, api: SimpleNamespace) -> None:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="kept"))
    )
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="a", initiative_id=initiative.id)))
    assert _shown_names(api, initiative.id, task.id) == ({"a"}, "a")
    for name in ("b", "c"):  # two updates: each one shown, none stays behind
        api.tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(id=task.id, name=name), update_mask=field_mask_pb2.FieldMask(paths=["name"])
            )
        )
        assert _shown_names(api, initiative.id, task.id) == ({name}, name)


def test_a_row_changed_behind_the_stores_back_is_shown_as_stored(store: RunningStore, api: SimpleNamespace) -> None:
    """The attack on a cache keyed by id and update time: change a column and leave `update_time`
    alone (a statement of SQL, as a repair by hand would). The kept message is keyed by every
    stored value, so the change shows."""
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="kept"))
    )
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="a", initiative_id=initiative.id)))
    before = api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id))
    assert _shown_names(api, initiative.id, task.id) == ({"a"}, "a")
    with store.handle.db.units.write() as uow:
        uow.session.execute(text("UPDATE tasks SET name = 'by hand' WHERE id = :id"), {"id": task.id})
        uow.commit()
    after = api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id))
    assert after.update_time == before.update_time
    assert _shown_names(api, initiative.id, task.id) == ({"by hand"}, "by hand")
