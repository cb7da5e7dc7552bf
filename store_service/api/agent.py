from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, literal, select

from cw.store.v1 import agent_pb2, agent_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Agent, Task
from store_service.db.reads import Reads
from store_service.domain.errors import InvalidArgument

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

    async def SumAgentUsage(self, request: Any, _context: Any) -> agent_pb2.SumAgentUsageResponse:
        statement = usage_sums(request)

        def work(reads: Reads) -> list[tuple[Any, ...]]:
            return reads.stored_rows(statement)

        return agent_pb2.SumAgentUsageResponse(sums=[usage_sum(row) for row in await self.db.fetch(work)])


# What each UsageGroup groups agents by (a phase through the agent's task).
_GROUP_KEYS: dict[int, Any] = {
    agent_pb2.USAGE_GROUP_TASK: Agent.task_id,
    agent_pb2.USAGE_GROUP_PHASE: Task.phase_id,
    agent_pb2.USAGE_GROUP_INITIATIVE: Agent.initiative_id,
    agent_pb2.USAGE_GROUP_ACCOUNT: Agent.account_id,
    agent_pb2.USAGE_GROUP_PROVIDER: Agent.provider,
}
_SUMMED = (
    Agent.usage_input_tokens,
    Agent.usage_output_tokens,
    Agent.usage_cache_read_tokens,
    Agent.usage_cache_write_tokens,
    Agent.usage_cost_usd,
)


def usage_sums(request: agent_pb2.SumAgentUsageRequest) -> Select[Any]:
    """One row per group: its key, the five sums, the number of agents; the filters by AND."""
    if request.group_by not in agent_pb2.UsageGroup.values():
        raise InvalidArgument.of("group_by", f"{request.group_by} is not a UsageGroup value")
    key = _GROUP_KEYS.get(request.group_by, literal(""))
    statement = select(key, *(func.coalesce(func.sum(column), 0) for column in _SUMMED), func.count(Agent.id))
    statement = statement.select_from(Agent).outerjoin(Task, Task.id == Agent.task_id)
    filters = (
        (request.task_id, Agent.task_id),
        (request.phase_id, Task.phase_id),
        (request.initiative_id, Agent.initiative_id),
        (request.account_id, Agent.account_id),
        (request.provider, Agent.provider),
    )
    for value, column in filters:
        if value:
            statement = statement.where(column == value)
    if request.group_by != agent_pb2.USAGE_GROUP_UNSPECIFIED:
        statement = statement.group_by(key).order_by(key)
    return statement


def usage_sum(row: tuple[Any, ...]) -> agent_pb2.UsageSum:
    key, input_tokens, output_tokens, cache_read, cache_write, cost, count = row
    usage = agent_pb2.Usage(
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        cache_read_tokens=int(cache_read),
        cache_write_tokens=int(cache_write),
        cost_usd=float(cost),
    )
    return agent_pb2.UsageSum(key=key or "", usage=usage, agent_count=int(count))
