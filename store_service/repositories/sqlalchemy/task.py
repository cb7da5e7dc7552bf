from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store_service.db.models import Task, TaskDependency
from store_service.db.views import task_dependency_criteria
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository, constraint_errors
from store_service.repositories.sqlalchemy.dependencies import check_new_edge
from store_service.rules import consistency, providers


class SqlAlchemyTaskRepository(SqlAlchemyRepository[Task]):
    model = Task

    def create(self, **values: Any) -> Task:
        providers.check("task", values)
        return super().create(**consistency.check_task(self.session, None, None, values))

    def update(self, row_id: str, **values: Any) -> Task:
        providers.check("task", values)
        stored = self.get(row_id)
        return super().update(row_id, **consistency.check_task(self.session, row_id, stored, values))

    def find_by_parent_task_id(self, parent_task_id: str) -> list[Task]:
        return self.find_where(Task.parent_task_id == parent_task_id)

    def find_by_phase_id(self, phase_id: str) -> list[Task]:
        return self.find_where(Task.phase_id == phase_id)

    def create_dependency(self, task_id: str, depends_on_task_id: str) -> TaskDependency:
        self.check_dependency(task_id, depends_on_task_id)
        edge = TaskDependency(task_id=task_id, depends_on_task_id=depends_on_task_id)
        self.session.add(edge)
        with constraint_errors(TaskDependency):
            self.session.flush()
        return edge

    def check_dependency(self, task_id: str, depends_on_task_id: str) -> None:
        """Both tasks exist and the edge closes no cycle."""
        self.get(task_id)
        self.get(depends_on_task_id)
        check_new_edge(
            self.session,
            TaskDependency.task_id,
            TaskDependency.depends_on_task_id,
            task_id,
            depends_on_task_id,
        )

    def find_dependencies(
        self, task_id: str | None = None, phase_id: str | None = None, initiative_id: str | None = None
    ) -> list[TaskDependency]:
        criteria = task_dependency_criteria(task_id, phase_id, initiative_id)
        query = select(TaskDependency).where(*criteria).order_by(TaskDependency.create_time, TaskDependency.id)
        return list(self.session.scalars(query))
