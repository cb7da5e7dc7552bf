"""GetUsage: what agents used, summed by the store, with the budgets of tasks and initiatives."""

from __future__ import annotations

import grpc

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, initiative_pb2, task_pb2
from orchestrator_service.agents import usage
from orchestrator_service.cache.state import Cache
from orchestrator_service.errors import BadRequest
from orchestrator_service.store_client import StoreClient

# The filter of SumAgentUsageRequest that one member of each scope sets.
_FILTERS = {
    agent_pb2.USAGE_GROUP_TASK: "task_id",
    agent_pb2.USAGE_GROUP_PHASE: "phase_id",
    agent_pb2.USAGE_GROUP_INITIATIVE: "initiative_id",
    agent_pb2.USAGE_GROUP_ACCOUNT: "account_id",
    agent_pb2.USAGE_GROUP_PROVIDER: "provider",
}


def sum_request(request: orchestrator_pb2.GetUsageRequest) -> agent_pb2.SumAgentUsageRequest:
    """Pure: the store's question for the request; one member's total, or every member's."""
    if request.scope not in agent_pb2.UsageGroup.values():
        raise BadRequest("scope", f"{request.scope} is not a UsageGroup value")
    if request.scope == agent_pb2.USAGE_GROUP_UNSPECIFIED:
        if request.id:
            raise BadRequest("id", "needs a scope")
        return agent_pb2.SumAgentUsageRequest()
    if request.id:
        filtered = agent_pb2.SumAgentUsageRequest()
        setattr(filtered, _FILTERS[request.scope], request.id)
        return filtered
    return agent_pb2.SumAgentUsageRequest(group_by=request.scope)


async def get_usage(
    store: StoreClient, cache: Cache, request: orchestrator_pb2.GetUsageRequest
) -> orchestrator_pb2.GetUsageResponse:
    answer = await store.call(store.agents.SumAgentUsage, sum_request(request))
    totals = []
    for row in answer.sums:
        key = request.id or row.key
        total = orchestrator_pb2.UsageTotal(
            id=key, usage=row.usage, agent_count=row.agent_count, budget_tokens_used=usage.budget_tokens(row.usage)
        )
        budgeted = await _budgeted(store, cache, request.scope, key, wanted=bool(request.id))
        if budgeted is not None:
            if budgeted.HasField("budget_tokens"):
                total.budget_tokens = budgeted.budget_tokens
            if budgeted.HasField("budget_usd"):
                total.budget_usd = budgeted.budget_usd
        totals.append(total)
    return orchestrator_pb2.GetUsageResponse(totals=totals)


async def _budgeted(
    store: StoreClient, cache: Cache, scope: int, key: str, wanted: bool
) -> task_pb2.Task | initiative_pb2.Initiative | None:
    """The task or initiative whose budget goes with a total: from the cache, or read when the
    request named it (a listing shows the budgets of live work only, at no cost per row)."""
    if not key:
        return None
    try:
        if scope == agent_pb2.USAGE_GROUP_TASK:
            return cache.tasks.get(key) or (await store.get_task(key) if wanted else None)
        if scope == agent_pb2.USAGE_GROUP_INITIATIVE:
            return cache.initiatives.get(key) or (await store.get_initiative(key) if wanted else None)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    return None
