from __future__ import annotations

from typing import Any

from cw.store.v1 import agent_pb2, agent_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Agent

AGENT = Resource(Agent, agent_pb2.Agent, "agent", lambda uow: uow.agents)


class AgentServicer(ResourceServicer[agent_pb2.Agent], agent_pb2_grpc.AgentServiceServicer):
    resource = AGENT
    CreateAgent = ResourceServicer.create_rpc
    GetAgent = ResourceServicer.get_rpc
    UpdateAgent = ResourceServicer.update_rpc
    DeleteAgent = ResourceServicer.delete_rpc

    async def ListAgents(self, request: Any, _context: Any) -> agent_pb2.ListAgentsResponse:
        agents, token = await self.list_page(
            request, ["task_id", "status", "statuses", "name", "session_id", "initiative_id", "orchestrator"]
        )
        return agent_pb2.ListAgentsResponse(agents=agents, next_page_token=token)
