from __future__ import annotations

from typing import Any

from cw.store.v1 import task_pb2, task_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Task, TaskDependency
from store_service.db.views import IsSet, task_dependency_criteria
from store_service.domain.errors import InvalidArgument

TASK = Resource(Task, task_pb2.Task, "task", lambda uow: uow.tasks)
TASK_DEPENDENCY = Resource(TaskDependency, task_pb2.TaskDependency, "dependency", lambda uow: uow.tasks)
# Edges of at most this many dependent tasks per request; a page of edges is as large by default.
MAX_TASK_IDS = 1000


class TaskServicer(ResourceServicer[task_pb2.Task], task_pb2_grpc.TaskServiceServicer):
    resource = TASK
    # With `reopen_phase` and `depends_on_task_ids`: store_service/writes/changes.py.
    CreateTask = ResourceServicer.create_rpc
    GetTask = ResourceServicer.get_rpc
    UpdateTask = ResourceServicer.update_rpc
    DeleteTask = ResourceServicer.delete_rpc

    async def ListTasks(self, request: Any, _context: Any) -> task_pb2.ListTasksResponse:
        merged = {"merge_time": IsSet(request.merged)} if request.HasField("merged") else {}
        tasks, token = await self.list_page(
            request, ["phase_id", "initiative_id", "parent_task_id", "status", "statuses"], extra_filters=merged
        )
        return task_pb2.ListTasksResponse(tasks=tasks, next_page_token=token)

    async def CreateTaskDependency(self, request: Any, _context: Any) -> task_pb2.TaskDependency:
        task_id = required_id(request.task_id, "task_id")
        depends_on = required_id(request.depends_on_task_id, "depends_on_task_id")
        return await self.db.write(
            lambda uow: TASK_DEPENDENCY.to_message(uow.tasks.create_dependency(task_id, depends_on))
        )

    async def ListTaskDependencies(self, request: Any, _context: Any) -> task_pb2.ListTaskDependenciesResponse:
        if len(request.task_ids) > MAX_TASK_IDS:
            raise InvalidArgument.of("task_ids", f"at most {MAX_TASK_IDS} ids per request")
        task_ids = sorted(set(request.task_ids))
        asked = {
            "task_id": request.task_id,
            "phase_id": request.phase_id,
            "initiative_id": request.initiative_id,
            "task_ids": task_ids,
        }
        criteria = task_dependency_criteria(request.task_id, request.phase_id, request.initiative_id, task_ids)
        edges, token = await self.page_of(request, TASK_DEPENDENCY, asked, criteria, MAX_TASK_IDS)
        return task_pb2.ListTaskDependenciesResponse(dependencies=edges, next_page_token=token)
