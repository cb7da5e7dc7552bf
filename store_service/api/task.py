from __future__ import annotations

from typing import Any

from cw.store.v1 import task_pb2, task_pb2_grpc
from store_service.api.convert import set_timestamp
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Task, TaskDependency

TASK = Resource(Task, task_pb2.Task, "task", lambda uow: uow.tasks)


def _edge(edge: TaskDependency) -> task_pb2.TaskDependency:
    message = task_pb2.TaskDependency(task_id=edge.task_id, depends_on_task_id=edge.depends_on_task_id)
    set_timestamp(message.create_time, edge.create_time)
    return message


class TaskServicer(ResourceServicer[task_pb2.Task], task_pb2_grpc.TaskServiceServicer):
    resource = TASK
    CreateTask = ResourceServicer.create_rpc
    GetTask = ResourceServicer.get_rpc
    UpdateTask = ResourceServicer.update_rpc
    DeleteTask = ResourceServicer.delete_rpc

    async def ListTasks(self, request: Any, _context: Any) -> task_pb2.ListTasksResponse:
        tasks, token = await self.list_page(request, ["phase_id", "initiative_id", "parent_task_id", "status"])
        return task_pb2.ListTasksResponse(tasks=tasks, next_page_token=token)

    async def CreateTaskDependency(self, request: Any, _context: Any) -> task_pb2.TaskDependency:
        task_id = required_id(request.task_id, "task_id")
        depends_on = required_id(request.depends_on_task_id, "depends_on_task_id")
        return await self.db.write(lambda uow: _edge(uow.tasks.create_dependency(task_id, depends_on)))

    async def ListTaskDependencies(self, request: Any, _context: Any) -> task_pb2.ListTaskDependenciesResponse:
        edges = await self.db.read(
            lambda uow: [
                _edge(edge)
                for edge in uow.tasks.find_dependencies(
                    request.task_id or None, request.phase_id or None, request.initiative_id or None
                )
            ]
        )
        return task_pb2.ListTaskDependenciesResponse(dependencies=edges)
