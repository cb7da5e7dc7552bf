from __future__ import annotations

from sqlalchemy import select

from store_service.db.models import Initiative, InitiativeProject, Project
from store_service.domain.errors import MissingReference, NotFound
from store_service.repositories.project import ProjectSetChange
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyProjectRepository(SqlAlchemyRepository[Project]):
    model = Project

    def set_initiative_projects(self, initiative_id: str, project_ids: list[str]) -> ProjectSetChange:
        if self.session.get(Initiative, initiative_id) is None:
            raise NotFound("initiative", initiative_id)
        wanted = list(dict.fromkeys(project_ids))
        for project_id in wanted:
            if self.find_by_id(project_id) is None:
                raise MissingReference("project_ids", "project", project_id)
        current = set(
            self.session.scalars(
                select(InitiativeProject.project_id).where(InitiativeProject.initiative_id == initiative_id)
            )
        )
        added = [project_id for project_id in wanted if project_id not in current]
        removed = sorted(current - set(wanted))
        self.session.add_all(InitiativeProject(initiative_id=initiative_id, project_id=pid) for pid in added)
        if removed:
            for link in self.session.scalars(
                select(InitiativeProject).where(
                    InitiativeProject.initiative_id == initiative_id,
                    InitiativeProject.project_id.in_(removed),
                )
            ):
                self.session.delete(link)
        self.flush()
        return ProjectSetChange(added=added, removed=removed)

    def find_projects_by_initiative_id(self, initiative_id: str) -> list[Project]:
        ids = select(InitiativeProject.project_id).where(InitiativeProject.initiative_id == initiative_id)
        return self.find_where(Project.id.in_(ids))
