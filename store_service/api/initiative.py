from __future__ import annotations

from typing import Any

from cw.store.v1 import initiative_pb2, initiative_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Initiative

INITIATIVE = Resource(Initiative, initiative_pb2.Initiative, "initiative", lambda uow: uow.initiatives)


class InitiativeServicer(ResourceServicer[initiative_pb2.Initiative], initiative_pb2_grpc.InitiativeServiceServicer):
    resource = INITIATIVE
    CreateInitiative = ResourceServicer.create_rpc
    GetInitiative = ResourceServicer.get_rpc
    UpdateInitiative = ResourceServicer.update_rpc
    DeleteInitiative = ResourceServicer.delete_rpc

    async def ListInitiatives(self, request: Any, _context: Any) -> initiative_pb2.ListInitiativesResponse:
        initiatives, token = await self.list_page(request, ["status", "statuses"])
        return initiative_pb2.ListInitiativesResponse(initiatives=initiatives, next_page_token=token)
