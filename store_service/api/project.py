from __future__ import annotations

from typing import Any

from cw.store.v1 import project_pb2, project_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Project
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork

PROJECT = Resource(Project, project_pb2.Project, "project", lambda uow: uow.projects)


def _projects_of(uow: SqlAlchemyUnitOfWork, initiative_id: str) -> list[project_pb2.Project]:
    return [PROJECT.to_message(row) for row in uow.projects.find_projects_by_initiative_id(initiative_id)]


class ProjectServicer(ResourceServicer[project_pb2.Project], project_pb2_grpc.ProjectServiceServicer):
    resource = PROJECT
    CreateProject = ResourceServicer.create_rpc
    GetProject = ResourceServicer.get_rpc
    UpdateProject = ResourceServicer.update_rpc
    DeleteProject = ResourceServicer.delete_rpc

    async def ListProjects(self, request: Any, _context: Any) -> project_pb2.ListProjectsResponse:
        projects, token = await self.list_page(request, [])
        return project_pb2.ListProjectsResponse(projects=projects, next_page_token=token)

    async def SetInitiativeProjects(self, request: Any, _context: Any) -> project_pb2.SetInitiativeProjectsResponse:
        initiative_id = required_id(request.initiative_id, "initiative_id")

        def work(uow: SqlAlchemyUnitOfWork) -> project_pb2.SetInitiativeProjectsResponse:
            change = uow.projects.set_initiative_projects(initiative_id, list(request.project_ids))
            return project_pb2.SetInitiativeProjectsResponse(
                projects=_projects_of(uow, initiative_id),
                added_project_ids=change.added,
                removed_project_ids=change.removed,
            )

        return await self.db.write(work)

    async def ListInitiativeProjects(self, request: Any, _context: Any) -> project_pb2.ListInitiativeProjectsResponse:
        initiative_id = required_id(request.initiative_id, "initiative_id")

        def work(uow: SqlAlchemyUnitOfWork) -> list[project_pb2.Project]:
            uow.initiatives.get(initiative_id)
            return _projects_of(uow, initiative_id)

        return project_pb2.ListInitiativeProjectsResponse(projects=await self.db.read(work))
