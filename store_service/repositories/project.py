from dataclasses import dataclass
from typing import Protocol

from store_service.db.models import Project
from store_service.repositories.base import Repository


@dataclass(frozen=True)
class ProjectSetChange:
    added: list[str]
    removed: list[str]


class ProjectRepository(Repository[Project], Protocol):
    def set_initiative_projects(self, initiative_id: str, project_ids: list[str]) -> ProjectSetChange:
        """Adds and removes only the difference from the current set."""
        ...

    def find_projects_by_initiative_id(self, initiative_id: str) -> list[Project]: ...
