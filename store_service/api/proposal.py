from __future__ import annotations

from typing import Any

from cw.store.v1 import proposal_pb2, proposal_pb2_grpc
from store_service.api import convert
from store_service.api.crud import Resource, ResourceServicer, request_filters, required_id
from store_service.db.models import Proposal
from store_service.domain.errors import InvalidArgument

PROPOSAL = Resource(Proposal, proposal_pb2.Proposal, "proposal", lambda uow: uow.proposals)


class ProposalServicer(ResourceServicer[proposal_pb2.Proposal], proposal_pb2_grpc.ProposalServiceServicer):
    resource = PROPOSAL
    CreateProposal = ResourceServicer.create_rpc
    GetProposal = ResourceServicer.get_rpc
    UpdateProposal = ResourceServicer.update_rpc
    DeleteProposal = ResourceServicer.delete_rpc

    async def ListProposals(self, request: Any, _context: Any) -> proposal_pb2.ListProposalsResponse:
        proposals, token = await self.list_page(request, ["agent_id", "status", "initiative_id"])
        return proposal_pb2.ListProposalsResponse(proposals=proposals, next_page_token=token)

    async def UpdateAgentProposals(self, request: Any, _context: Any) -> proposal_pb2.UpdateAgentProposalsResponse:
        agent_id = required_id(request.agent_id, "agent_id")
        if not request.update_mask.paths:
            raise InvalidArgument.of("update_mask", "must name the fields to set on every proposal")
        values = convert.values_for_update(request.proposal, Proposal, "proposal", list(request.update_mask.paths))

        def work(uow: Any) -> int:
            uow.agents.get(agent_id)
            return int(uow.proposals.update_many_by_agent_id(agent_id, **values))

        return proposal_pb2.UpdateAgentProposalsResponse(updated_count=await self.db.write(work))

    async def CountProposals(self, request: Any, _context: Any) -> proposal_pb2.CountProposalsResponse:
        agent_id = required_id(request.agent_id, "agent_id")
        status = request_filters(request, ["status"]).get("status")
        count = await self.db.read(lambda uow: uow.proposals.count_by_agent_id_and_status(agent_id, status))
        return proposal_pb2.CountProposalsResponse(count=count)
