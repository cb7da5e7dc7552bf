from __future__ import annotations

from typing import Any

from cw.store.v1 import page_pb2, page_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Page
from store_service.domain.errors import NotFound
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork

PAGE = Resource(Page, page_pb2.Page, "page", lambda uow: uow.pages)


class PageServicer(ResourceServicer[page_pb2.Page], page_pb2_grpc.PageServiceServicer):
    resource = PAGE
    CreatePage = ResourceServicer.create_rpc
    GetPage = ResourceServicer.get_rpc
    UpdatePage = ResourceServicer.update_rpc
    DeletePage = ResourceServicer.delete_rpc

    async def ListPages(self, request: Any, _context: Any) -> page_pb2.ListPagesResponse:
        pages, token = await self.list_page(request, ["initiative_id", "parent_page_id"])
        return page_pb2.ListPagesResponse(pages=pages, next_page_token=token)

    async def GetRootPage(self, request: Any, _context: Any) -> page_pb2.Page:
        initiative_id = required_id(request.initiative_id, "initiative_id")

        def work(uow: SqlAlchemyUnitOfWork) -> page_pb2.Page:
            uow.initiatives.get(initiative_id)
            root = uow.pages.find_root_page(initiative_id)
            if root is None:
                raise NotFound("root page of initiative", initiative_id)
            return PAGE.to_message(root)

        return await self.db.read(work)

    async def GetOrCreateRootPage(self, request: Any, _context: Any) -> page_pb2.Page:
        initiative_id = required_id(request.initiative_id, "initiative_id")
        return await self.db.write(
            lambda uow: PAGE.to_message(uow.pages.get_or_create_root_page(initiative_id, request.title or None))
        )
