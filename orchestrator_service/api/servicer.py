"""OrchestratorService: thin handlers over `Operations` and `Review`, errors mapped to statuses.

One mapping for every error: the orchestrator's own (with ErrorInfo and, for a bad field, a
BadRequest naming it), the store's passed through with their code and details, a git failure as
FAILED_PRECONDITION with no server path in its message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.agents import supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.api import usage
from orchestrator_service.api.operations import Operations
from orchestrator_service.api.review import Review
from orchestrator_service.errors import BadRequest, NotAllowedNow, OrchestratorError
from orchestrator_service.git.repo import GitError
from orchestrator_service.paths import UnsafeName, redact

log = logging.getLogger("cw.rpc")
DOMAIN = "orchestrator.cw"
OUTPUT_POLL_SECONDS = 0.2
# StreamEvents streams open at once, all callers together (docs/api.md, limits).
MAX_FORWARDED_STREAMS = 64
T = TypeVar("T")
RequestT = TypeVar("RequestT", bound=Message)
# A unary method of the servicer: its generated request message in, its answer out.
Handler = Callable[["OrchestratorServicer", RequestT, grpc.aio.ServicerContext], Awaitable[T]]


# An error quotes what it refuses (an id, a name); quoted whole, a client's multi-megabyte value
# would make the answer's trailers exceed gRPC's metadata limit, and the client would see
# RESOURCE_EXHAUSTED instead of the error. Each text in a status is cut to this many characters.
MAX_ERROR_TEXT = 500


def _bounded(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def error_status(error: OrchestratorError) -> grpc.Status:
    metadata = {key: _bounded(value, 200) for key, value in error.metadata.items()}
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)]
    if isinstance(error, BadRequest):
        description = _bounded(error.description)
        violation = error_details_pb2.BadRequest.FieldViolation(field=_bounded(error.field), description=description)
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    status = status_pb2.Status(code=error.code.value[0], message=_bounded(error.message), details=packed)
    return rpc_status.to_status(status)


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    def __init__(self, operations: Operations, review: Review, root: Path) -> None:
        self.operations = operations
        self.review = review
        self.store = operations.store
        self.root = root
        self._open_streams = 0

    async def _abort_for(self, context: grpc.aio.ServicerContext, error: Exception) -> None:
        if isinstance(error, (GitError, UnsafeName)):
            error = NotAllowedNow(redact(str(error), self.root), "GIT_FAILED")
        if isinstance(error, OrchestratorError):
            await context.abort_with_status(error_status(error))
        if isinstance(error, grpc.aio.AioRpcError):
            context.set_trailing_metadata(
                tuple((k, v) for k, v in error.trailing_metadata() or () if k == "grpc-status-details-bin")
            )
            await context.abort(error.code(), error.details() or "store call failed")
        raise error

    @staticmethod
    def handled(method: Handler[RequestT, T]) -> Handler[RequestT, T]:
        @functools.wraps(method)
        async def wrapper(self: OrchestratorServicer, request: RequestT, context: grpc.aio.ServicerContext) -> T:
            log.debug("rpc /cw.orchestrator.v1.OrchestratorService/%s", method.__name__)
            try:
                return await method(self, request, context)
            except (OrchestratorError, grpc.aio.AioRpcError, GitError, UnsafeName) as error:
                await self._abort_for(context, error)
                raise
            except Exception:
                # A bug, not the caller's input: logged whole here, one redacted line for them.
                log.exception("%s failed", method.__name__)
                await context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed; see the orchestrator's log")
                raise

        return wrapper

    @handled
    async def ApprovePhase(
        self, request: orchestrator_pb2.ApprovePhaseRequest, context: grpc.aio.ServicerContext
    ) -> phase_pb2.Phase:
        return await self.operations.approve_phase(required(request.phase_id, "phase_id"))

    @handled
    async def DispatchTask(
        self, request: orchestrator_pb2.DispatchTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.Task:
        return await self.operations.dispatch_task(required(request.task_id, "task_id"))

    @handled
    async def GetPhaseDiff(
        self, request: orchestrator_pb2.GetPhaseDiffRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.GetPhaseDiffResponse:
        return await self.review.phase_diff(required(request.phase_id, "phase_id"))

    @handled
    async def MergePhase(
        self, request: orchestrator_pb2.MergePhaseRequest, context: grpc.aio.ServicerContext
    ) -> phase_pb2.Phase:
        return await self.review.merge_phase(required(request.phase_id, "phase_id"))

    @handled
    async def RequestChanges(
        self, request: orchestrator_pb2.RequestChangesRequest, context: grpc.aio.ServicerContext
    ) -> phase_pb2.Phase:
        return await self.review.request_changes(required(request.phase_id, "phase_id"))

    @handled
    async def GetInitiativeDiff(
        self, request: orchestrator_pb2.GetInitiativeDiffRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.GetInitiativeDiffResponse:
        return await self.review.initiative_diff(required(request.initiative_id, "initiative_id"))

    @handled
    async def DeliverInitiative(
        self, request: orchestrator_pb2.DeliverInitiativeRequest, context: grpc.aio.ServicerContext
    ) -> initiative_pb2.Initiative:
        return await self.review.deliver(required(request.initiative_id, "initiative_id"))

    @handled
    async def RetryBlockedTask(
        self, request: orchestrator_pb2.RetryBlockedTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.Task:
        return await self.operations.retry_blocked_task(required(request.task_id, "task_id"))

    @handled
    async def StopAgent(
        self, request: orchestrator_pb2.StopAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.Agent:
        return await self.operations.stop_agent(required(request.agent_id, "agent_id"))

    @handled
    async def AnswerQuestions(
        self, request: orchestrator_pb2.AnswerQuestionsRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.Agent:
        return await self.operations.answer_questions(required(request.agent_id, "agent_id"), answers_of(request))

    @handled
    async def GetUsage(
        self, request: orchestrator_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.GetUsageResponse:
        orchestrator = self.operations.orchestrator
        return await usage.get_usage(self.store, orchestrator.cache, request)

    @handled
    async def SendChatMessage(
        self, request: orchestrator_pb2.SendChatMessageRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.SendChatMessageResponse:
        return await self.operations.orchestrator.planning.chats.send(request)

    async def StreamEvents(
        self, request: orchestrator_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[event_pb2.Event]:
        """The store's log, replayed then followed; a client that reconnects with its last
        sequence misses nothing, whichever of the two services restarted."""
        log.debug("rpc /cw.orchestrator.v1.OrchestratorService/StreamEvents (stream)")
        if self._open_streams >= MAX_FORWARDED_STREAMS:
            # Each rides on the store's streams of the orchestrator's own identity (capped at 256
            # there, with a send budget): callers must never use up what the orchestrator needs.
            error = OrchestratorError(
                f"at most {MAX_FORWARDED_STREAMS} StreamEvents streams may be open at once: close one first",
                "RESOURCE_EXHAUSTED",
                limit=str(MAX_FORWARDED_STREAMS),
            )
            error.code = grpc.StatusCode.RESOURCE_EXHAUSTED
            await context.abort_with_status(error_status(error))
        self._open_streams += 1
        try:
            async for stored in self._forwarded(request, context):
                yield stored
        finally:
            self._open_streams -= 1

    async def _forwarded(
        self, request: orchestrator_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[event_pb2.Event]:
        forwarded = event_pb2.WatchEventsRequest(
            after_sequence=request.after_sequence, types=request.types, initiative_id=request.initiative_id
        )
        if request.HasField("heartbeat_interval"):
            forwarded.heartbeat_interval.CopyFrom(request.heartbeat_interval)
        try:
            async for stored in self.store.events.WatchEvents(forwarded):
                yield stored
        except grpc.aio.AioRpcError as error:
            await self._abort_for(context, error)

    async def StreamAgentOutput(
        self, request: orchestrator_pb2.StreamAgentOutputRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[orchestrator_pb2.StreamAgentOutputResponse]:
        log.debug("rpc /cw.orchestrator.v1.OrchestratorService/StreamAgentOutput (stream)")
        try:
            agent = await self.store.get_agent(required(request.agent_id, "agent_id"))
            files = AgentFiles.of(self.root, agent.id)
        except (OrchestratorError, grpc.aio.AioRpcError, UnsafeName) as error:
            await self._abort_for(context, error)
            return
        offset, following = 0, request.follow
        while True:
            data, end = await asyncio.to_thread(supervisor.read_new_output, files, offset, True, 1024 * 1024)
            if data:
                yield orchestrator_pb2.StreamAgentOutputResponse(data=data, offset=offset)
                offset = end
                continue
            if not following:
                return
            await asyncio.sleep(OUTPUT_POLL_SECONDS)
            try:
                agent = await self.store.get_agent(agent.id)
            except grpc.aio.AioRpcError as error:
                await self._abort_for(context, error)
            # One more read after the agent stops running picks up its last words.
            following = agent.status == agent_pb2.AGENT_STATUS_RUNNING


def required(value: str, field: str) -> str:
    if not value:
        raise BadRequest(field, "is required")
    return value


def answers_of(request: orchestrator_pb2.AnswerQuestionsRequest) -> dict[str, str]:
    """The answers by question id; each question answered once, and at least one."""
    answers: dict[str, str] = {}
    for index, answer in enumerate(request.answers):
        if not answer.question_id:
            raise BadRequest(f"answers[{index}].question_id", "is required")
        if answer.question_id in answers:
            raise BadRequest(f"answers[{index}].question_id", f"{answer.question_id!r} is answered twice")
        answers[answer.question_id] = answer.answer
    if not answers:
        raise BadRequest("answers", "must answer the pending questions")
    return answers
