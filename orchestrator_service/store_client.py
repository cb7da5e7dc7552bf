"""The orchestrator's only way to the store: its gRPC API, with deadlines, one paging loop, rows by
kind, and conditional writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cw.store.v1 import (
    account_pb2,
    account_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    chat_session_pb2_grpc,
    conversation_pb2,
    conversation_pb2_grpc,
    event_pb2,
    event_pb2_grpc,
    initiative_pb2,
    initiative_pb2_grpc,
    log_chunk_pb2,
    log_chunk_pb2_grpc,
    message_pb2,
    message_pb2_grpc,
    page_pb2_grpc,
    phase_pb2,
    phase_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    proposal_pb2_grpc,
    review_comment_pb2,
    review_comment_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)

CALL_TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 1000
# Messages up to this size in either direction; the store pages its answers to stay below 4 MiB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
T = TypeVar("T")


class Stale(Exception):
    """A conditional write found the row changed since it was read: re-read, decide again."""


class NotReady(Stale):
    """The store refused to move work early (a phase to review with tasks not done, a task started
    before its dependencies): what the decision was taken from was behind the store. Decide again
    once the cache has caught up; the missing rows' events queue the key again."""


# The ErrorInfo reason of the store's progress invariants (store_service/rules/progress.py).
NOT_READY_REASON = "NOT_READY"


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason a failed call carries, or ""."""
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


class _Signer:
    """Adds the orchestrator's token to a call on the store channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def signed(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files an interceptor under the first call kind it implements only: one class per kind.
class _SignUnary(_Signer, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.signed(details), request)


class _SignStream(_Signer, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.signed(details), request)


def store_channel(address: str, token: str, root_certificates: bytes | None = None) -> grpc.aio.Channel:
    """TLS when given the CA that signed the store's certificate, plaintext otherwise; every call
    signed with the orchestrator's token."""
    interceptors = [_SignUnary(token), _SignStream(token)]
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if root_certificates is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)


class StoreClient:
    def __init__(self, address: str, token: str, root_certificates: bytes | None = None) -> None:
        self.address = address
        self.channel = store_channel(address, token, root_certificates)
        self.initiatives = initiative_pb2_grpc.InitiativeServiceStub(self.channel)
        self.phases = phase_pb2_grpc.PhaseServiceStub(self.channel)
        self.tasks = task_pb2_grpc.TaskServiceStub(self.channel)
        self.agents = agent_pb2_grpc.AgentServiceStub(self.channel)
        self.projects = project_pb2_grpc.ProjectServiceStub(self.channel)
        self.accounts = account_pb2_grpc.AccountServiceStub(self.channel)
        self.log_chunks = log_chunk_pb2_grpc.LogChunkServiceStub(self.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.channel)
        # Planning (orchestrator_service/planning/): what runs are shown, proposals, chats.
        self.pages = page_pb2_grpc.PageServiceStub(self.channel)
        self.proposals = proposal_pb2_grpc.ProposalServiceStub(self.channel)
        self.chat_sessions = chat_session_pb2_grpc.ChatSessionServiceStub(self.channel)
        self.conversations = conversation_pb2_grpc.ConversationServiceStub(self.channel)
        self.review_comments = review_comment_pb2_grpc.ReviewCommentServiceStub(self.channel)
        self.messages = message_pb2_grpc.MessageServiceStub(self.channel)
        # Unary calls made so far: benchmarks divide it by the tasks run.
        self.calls = 0

    async def call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        """One unary call with a deadline: a store that is down fails fast with UNAVAILABLE."""
        self.calls += 1
        return await method(request, timeout=CALL_TIMEOUT_SECONDS)

    async def list_all(self, method: Callable[..., Awaitable[Any]], request: Any, field: str) -> list[Any]:
        """Every page of a List call (the store cuts pages by size as well as by count)."""
        request.page_size = PAGE_SIZE
        rows: list[Any] = []
        while True:
            page = await self.call(method, request)
            rows.extend(getattr(page, field))
            if not page.next_page_token:
                return rows
            request.page_token = page.next_page_token

    async def append(
        self, events: Sequence[event_pb2.Event], changes: Sequence[event_pb2.StateChange] = ()
    ) -> event_pb2.AppendEventResponse:
        """State changes and the events that announce them, in one store transaction. A change
        whose precondition no longer holds raises Stale, and nothing is written."""
        request = event_pb2.AppendEventRequest(events=list(events), changes=list(changes))
        try:
            return await self.call(self.events.AppendEvent, request)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.ABORTED:
                raise Stale(error.details() or "changed since read") from error
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(error) == NOT_READY_REASON:
                raise NotReady(error.details() or "not ready") from error
            raise

    async def head_sequence(self) -> int:
        """The sequence of the newest event in the log."""
        head = await self.call(self.events.ListEvents, event_pb2.ListEventsRequest(page_size=1))
        return int(head.head_sequence)

    # ---- rows by kind ----------------------------------------------------------------------------

    async def get(self, kind: str, row_id: str) -> Any:
        method, request = {
            "task": (self.tasks.GetTask, task_pb2.GetTaskRequest),
            "phase": (self.phases.GetPhase, phase_pb2.GetPhaseRequest),
            "agent": (self.agents.GetAgent, agent_pb2.GetAgentRequest),
            "initiative": (self.initiatives.GetInitiative, initiative_pb2.GetInitiativeRequest),
            "project": (self.projects.GetProject, project_pb2.GetProjectRequest),
            "account": (self.accounts.GetAccount, account_pb2.GetAccountRequest),
            "conversation": (self.conversations.GetConversation, conversation_pb2.GetConversationRequest),
        }[kind]
        return await self.call(method, request(id=row_id))

    async def get_task(self, task_id: str) -> task_pb2.Task:
        return await self.call(self.tasks.GetTask, task_pb2.GetTaskRequest(id=task_id))

    async def get_phase(self, phase_id: str) -> phase_pb2.Phase:
        return await self.call(self.phases.GetPhase, phase_pb2.GetPhaseRequest(id=phase_id))

    async def get_agent(self, agent_id: str) -> agent_pb2.Agent:
        return await self.call(self.agents.GetAgent, agent_pb2.GetAgentRequest(id=agent_id))

    async def get_initiative(self, initiative_id: str) -> initiative_pb2.Initiative:
        return await self.call(self.initiatives.GetInitiative, initiative_pb2.GetInitiativeRequest(id=initiative_id))

    async def projects_of(self, initiative_id: str) -> list[project_pb2.Project]:
        request = project_pb2.ListInitiativeProjectsRequest(initiative_id=initiative_id)
        return list((await self.call(self.projects.ListInitiativeProjects, request)).projects)

    async def phases_in(self, initiative_id: str) -> list[phase_pb2.Phase]:
        """Every phase of the initiative, whatever its status."""
        request = phase_pb2.ListPhasesRequest(initiative_id=initiative_id)
        return await self.list_all(self.phases.ListPhases, request, "phases")

    async def live_agents_of(self, task_id: str) -> list[agent_pb2.Agent]:
        """The task's agents that are RUNNING or WAITING_FOR_INPUT."""
        statuses = [agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]
        request = agent_pb2.ListAgentsRequest(task_id=task_id, statuses=statuses)
        return await self.list_all(self.agents.ListAgents, request, "agents")

    async def phase_dependencies(self, phase_id: str) -> list[phase_pb2.Phase]:
        request = phase_pb2.ListPhaseDependenciesRequest(phase_id=phase_id)
        return list((await self.call(self.phases.ListPhaseDependencies, request)).phases)

    async def task_dependencies(self, task_ids: Sequence[str]) -> list[task_pb2.TaskDependency]:
        """Edges whose dependent task is one of `task_ids`, a thousand ids per request."""
        edges: list[task_pb2.TaskDependency] = []
        ids = list(task_ids)
        for start in range(0, len(ids), PAGE_SIZE):
            request = task_pb2.ListTaskDependenciesRequest(task_ids=ids[start : start + PAGE_SIZE])
            edges += await self.list_all(self.tasks.ListTaskDependencies, request, "dependencies")
        return edges

    async def open_comments(self, phase_id: str) -> list[review_comment_pb2.ReviewComment]:
        request = review_comment_pb2.ListReviewCommentsRequest(phase_id=phase_id, resolved=False)
        return await self.list_all(self.review_comments.ListReviewComments, request, "review_comments")

    async def log_chunks_of(self, agent_id: str) -> list[log_chunk_pb2.LogChunk]:
        request = log_chunk_pb2.ListLogChunksRequest(agent_id=agent_id)
        return await self.list_all(self.log_chunks.ListLogChunks, request, "log_chunks")

    async def close(self) -> None:
        await self.channel.close()


_CHANGE_FIELDS = {
    task_pb2.UpdateTaskRequest: "update_task",
    phase_pb2.UpdatePhaseRequest: "update_phase",
    agent_pb2.UpdateAgentRequest: "update_agent",
    agent_pb2.CreateAgentRequest: "create_agent",
    initiative_pb2.UpdateInitiativeRequest: "update_initiative",
    account_pb2.UpdateAccountRequest: "update_account",
    project_pb2.UpdateProjectRequest: "update_project",
    task_pb2.CreateTaskRequest: "create_task",
    conversation_pb2.CreateConversationRequest: "create_conversation",
    conversation_pb2.AnswerConversationRequest: "answer_conversation",
    review_comment_pb2.CreateReviewCommentRequest: "create_review_comment",
    review_comment_pb2.ResolveReviewCommentRequest: "resolve_review_comment",
    message_pb2.CreateMessageRequest: "create_message",
    conversation_pb2.UpdateConversationRequest: "update_conversation",
    message_pb2.UpdateMessageRequest: "update_message",
}


def changes(*requests: Any) -> list[event_pb2.StateChange]:
    """StateChange messages from Update/Create requests, by their type."""
    return [event_pb2.StateChange(**{_CHANGE_FIELDS[type(request)]: request}) for request in requests]


def changed_row(row: event_pb2.ChangedRow) -> tuple[str, Any]:
    """(kind, message) of one row an AppendEvent answer carries."""
    kind = row.WhichOneof("row")
    if kind is None:
        raise ValueError("a changed row without a row")
    return kind, getattr(row, kind)
