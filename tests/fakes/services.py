"""The store's services as the orchestrator calls them by method (`store.call(store.agents.ListAgents,
request)`), over the in-memory store's tables (tests/fakes/store.py): the few Get, List and Sum calls
the controllers make, filtered as the store filters them. A call nobody taught it fails loudly
(NotImplementedError), so a test never passes on an answer the store would not give.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    conversation_pb2,
    lease_pb2,
    log_chunk_pb2,
    message_pb2,
    phase_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)

if TYPE_CHECKING:
    from tests.fakes.store import FakeStore

Call = Callable[..., Awaitable[Any]]
_LIVE = (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)

# List method -> (the kind of row listed, its answer's type, the answer's field, the request's
# fields that filter by equality when set).
_LISTS: dict[str, tuple[str, Any, str, tuple[str, ...]]] = {
    "ListAgents": (
        "agent",
        agent_pb2.ListAgentsResponse,
        "agents",
        ("task_id", "name", "initiative_id", "status", "session_id", "orchestrator"),
    ),
    "ListTasks": ("task", task_pb2.ListTasksResponse, "tasks", ("phase_id", "initiative_id", "status")),
    "ListPhases": ("phase", phase_pb2.ListPhasesResponse, "phases", ("initiative_id",)),
    "ListMessages": (
        "message",
        message_pb2.ListMessagesResponse,
        "messages",
        ("parent_message_id", "sender_id", "recipient_id"),
    ),
    "ListConversations": (
        "conversation",
        conversation_pb2.ListConversationsResponse,
        "conversations",
        ("initiative_id", "from_agent_id", "to_agent_id", "status"),
    ),
}
# Lists of rows the fake keeps none of (review comments, proposals): always empty.
_EMPTY: dict[str, Any] = {
    "ListReviewComments": review_comment_pb2.ListReviewCommentsResponse,
    "ListProposals": proposal_pb2.ListProposalsResponse,
}
_GETS = {
    "GetAgent": "agent",
    "GetTask": "task",
    "GetPhase": "phase",
    "GetInitiative": "initiative",
    "GetProject": "project",
    "GetAccount": "account",
    "GetConversation": "conversation",
    "GetMessage": "message",
}


class Services:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def __getattr__(self, method: str) -> Call:
        async def answer(request: Any, timeout: float | None = None) -> Any:
            return await self._answer(method, request)

        return answer

    async def _answer(self, method: str, request: Any) -> Any:
        store = self.store
        if method in _GETS:
            return await store.get(_GETS[method], request.id)
        if method in _LISTS:
            return self._list(method, request)
        if method in _EMPTY:
            return _EMPTY[method]()
        if method == "GetChatSession":
            raise grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata())
        if method == "SumAgentUsage":
            return self._sum(request)
        if method == "CreateLogChunk":
            store.chunks.append(request.log_chunk)
            return request.log_chunk
        if method == "ListLogChunks":
            return log_chunk_pb2.ListLogChunksResponse(log_chunks=await store.log_chunks_of(request.agent_id))
        if method == "ListLeases":
            return self._leases(request)
        if method == "GetNextAvailableAccount":
            return self._next_account(request.provider)
        if method == "GetAccountSecrets":
            return account_pb2.GetAccountSecretsResponse()
        raise NotImplementedError(f"the fake store does not answer {method}")

    def _list(self, method: str, request: Any) -> Any:
        kind, response, field, filters = _LISTS[method]
        rows = list(self.store.tables.rows[kind].values())
        for name in filters:
            wanted = getattr(request, name)
            if wanted:
                rows = [row for row in rows if getattr(row, name) == wanted]
        statuses = set(getattr(request, "statuses", ()))
        if statuses:
            rows = [row for row in rows if row.status in statuses]
        rows.sort(key=lambda row: (row.create_time.ToNanoseconds(), row.id))
        return response(**{field: rows})

    def _sum(self, request: agent_pb2.SumAgentUsageRequest) -> agent_pb2.SumAgentUsageResponse:
        """One total of the agents of the task or initiative (the controllers group by nothing)."""
        agents = [
            agent
            for agent in self.store.tables.rows["agent"].values()
            if (not request.task_id or agent.task_id == request.task_id)
            and (not request.initiative_id or agent.initiative_id == request.initiative_id)
        ]
        total = agent_pb2.Usage()
        for agent in agents:
            total.input_tokens += agent.usage.input_tokens
            total.output_tokens += agent.usage.output_tokens
            total.cache_read_tokens += agent.usage.cache_read_tokens
            total.cache_write_tokens += agent.usage.cache_write_tokens
            total.cost_usd += agent.usage.cost_usd
        sums = [agent_pb2.UsageSum(usage=total, agent_count=len(agents))] if agents else []
        return agent_pb2.SumAgentUsageResponse(sums=sums)

    def _leases(self, request: lease_pb2.ListLeasesRequest) -> lease_pb2.ListLeasesResponse:
        found = [lease for name, lease in sorted(self.store.leases.items()) if name.startswith(request.prefix)]
        answer = lease_pb2.ListLeasesResponse(leases=found)
        answer.read_time.FromNanoseconds(int(self.store.lease_clock * 1e9))
        return answer

    def _next_account(self, provider: str) -> account_pb2.Account:
        """The provider's first account (by `sort_order`) neither set aside, resting nor at its cap;
        NOT_FOUND when none is (the start waits for one). The store's turn-taking among several
        free ones is its own (tests/integration/test_rpc_domain_methods.py)."""
        now = time.time()
        agents = self.store.tables.rows["agent"].values()
        for account in sorted(self.store.tables.rows["account"].values(), key=lambda row: (row.sort_order, row.id)):
            resting = account.is_exhausted and account.exhausted_until.ToNanoseconds() / 1e9 > now
            live = [a for a in agents if a.account_id == account.id and a.status in _LIVE]
            full = account.max_concurrent_agents and len(live) >= account.max_concurrent_agents
            if account.provider == provider and not account.unusable_reason and not resting and not full:
                return account
        raise grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata())
