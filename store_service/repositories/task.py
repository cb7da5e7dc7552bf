from typing import Protocol

from store_service.db.models import Task, TaskDependency
from store_service.repositories.base import Repository


class TaskRepository(Repository[Task], Protocol):
    def find_by_parent_task_id(self, parent_task_id: str) -> list[Task]: ...

    def find_by_phase_id(self, phase_id: str) -> list[Task]: ...

    def create_dependency(self, task_id: str, depends_on_task_id: str) -> TaskDependency: ...

    def check_dependency(self, task_id: str, depends_on_task_id: str) -> None: ...

    def find_dependencies(
        self, task_id: str | None = None, phase_id: str | None = None, initiative_id: str | None = None
    ) -> list[TaskDependency]:
        """Edges touching `task_id`, or whose dependent task is in the phase or initiative."""
        ...
