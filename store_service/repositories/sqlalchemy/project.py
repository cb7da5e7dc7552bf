from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store_service.db.models import Initiative, InitiativeProject, Project
from store_service.domain import rules
from store_service.domain.errors import FieldViolation, InvalidArgument, MissingReference, NotFound
from store_service.repositories.project import ProjectSetChange
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """The values with the url as stored; InvalidArgument when a name, url or branch is unsafe."""
    violations, checked_values = [], dict(values)
    if values.get("name") is not None and (problem := rules.project_name_problem(values["name"])):
        violations.append(FieldViolation("project.name", problem))
    if values.get("url") is not None:
        try:
            checked_values["url"] = rules.project_url(values["url"])
        except ValueError as error:
            violations.append(FieldViolation("project.url", str(error)))
    if values.get("shared_remote") is not None:
        try:
            checked_values["shared_remote"] = rules.project_url(values["shared_remote"])
        except ValueError as error:
            violations.append(FieldViolation("project.shared_remote", str(error)))
    if values.get("default_branch") is not None and (problem := rules.branch_problem(values["default_branch"])):
        violations.append(FieldViolation("project.default_branch", problem))
    if violations:
        raise InvalidArgument(violations)
    return checked_values


class SqlAlchemyProjectRepository(SqlAlchemyRepository[Project]):
    model = Project

    def create(self, **values: Any) -> Project:
        return super().create(**_checked(values))

    def update(self, row_id: str, **values: Any) -> Project:
        return super().update(row_id, **_checked(values))

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
