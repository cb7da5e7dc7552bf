from __future__ import annotations

from typing import Any

from cw.store.v1 import proposal_pb2, proposal_pb2_grpc
from store_service.api import convert, limits
from store_service.api.chat_session import change_set_message
from store_service.api.crud import Resource, ResourceServicer, request_filters, required_id
from store_service.db.models import Proposal
from store_service.domain.errors import InvalidArgument
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.services import proposals

PROPOSAL = Resource(Proposal, proposal_pb2.Proposal, "proposal", lambda uow: uow.proposals)


class ProposalServicer(ResourceServicer[proposal_pb2.Proposal], proposal_pb2_grpc.ProposalServiceServicer):
    resource = PROPOSAL
    CreateProposal = ResourceServicer.create_rpc
    GetProposal = ResourceServicer.get_rpc
    UpdateProposal = ResourceServicer.update_rpc
    DeleteProposal = ResourceServicer.delete_rpc

    async def ListProposals(self, request: Any, _context: Any) -> proposal_pb2.ListProposalsResponse:
        listed, token = await self.list_page(request, ["agent_id", "status", "initiative_id", "report_id"])
        return proposal_pb2.ListProposalsResponse(proposals=listed, next_page_token=token)

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

    async def AcceptProposals(self, request: Any, _context: Any) -> proposal_pb2.AcceptProposalsResponse:
        ids = _proposal_ids(request)

        def work(uow: SqlAlchemyUnitOfWork) -> proposal_pb2.AcceptProposalsResponse:
            accepted = proposals.accept(uow, ids, request.chat_session_id or None)
            answer = proposal_pb2.AcceptProposalsResponse(
                proposals=[PROPOSAL.to_message(row) for row in accepted.proposals]
            )
            if accepted.change_set is not None:
                answer.change_set_id = accepted.change_set.id
                size = change_set_message(accepted.change_set).ByteSize()
                if size > limits.CHANGE_SET.size:
                    raise InvalidArgument.of(
                        "proposal_ids",
                        f"the change set would record {size} bytes of states before and after; at most "
                        f"{limits.CHANGE_SET.describe()}: accept fewer proposals at once",
                    )
            limits.check_answer(answer, "proposal_ids")
            return answer

        return await self.db.write(work)

    async def DismissProposals(self, request: Any, _context: Any) -> proposal_pb2.DismissProposalsResponse:
        ids = _proposal_ids(request)

        def work(uow: SqlAlchemyUnitOfWork) -> proposal_pb2.DismissProposalsResponse:
            rows = proposals.dismiss(uow, ids)
            answer = proposal_pb2.DismissProposalsResponse(proposals=[PROPOSAL.to_message(row) for row in rows])
            limits.check_answer(answer, "proposal_ids")
            return answer

        return await self.db.write(work)


def _proposal_ids(request: Any) -> list[str]:
    for index, proposal_id in enumerate(request.proposal_ids):
        required_id(proposal_id, f"proposal_ids[{index}]")
    return list(request.proposal_ids)
