"""OrchestratorService: thin handlers over `Operations`, with errors mapped to gRPC statuses."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from cw.store.v1 import agent_pb2, event_pb2
from orchestrator_service.agents import supervisor
from orchestrator_service.errors import BadRequest, OrchestratorError
from orchestrator_service.operations import Operations
from orchestrator_service.reconciler import files_of

log = logging.getLogger("cw.rpc")
DOMAIN = "orchestrator.cw"
OUTPUT_POLL_SECONDS = 0.2
T = TypeVar("T")


def error_status(error: OrchestratorError) -> grpc.Status:
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)]
    if isinstance(error, BadRequest):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.description)
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(status_pb2.Status(code=error.code.value[0], message=error.message, details=packed))


async def _abort_for(context: grpc.aio.ServicerContext, error: Exception) -> None:
    """Our errors as they are; the store's errors passed through with their code and details (a store
    that is down is UNAVAILABLE here too)."""
    if isinstance(error, OrchestratorError):
        await context.abort_with_status(error_status(error))
    if isinstance(error, grpc.aio.AioRpcError):
        context.set_trailing_metadata(
            tuple((key, value) for key, value in error.trailing_metadata() or () if key == "grpc-status-details-bin")
        )
        await context.abort(error.code(), error.details() or "store call failed")
    raise error


def handled(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        log.debug("rpc /cw.orchestrator.v1.OrchestratorService/%s", method.__name__)
        try:
            return await method(self, request, context)
        except (OrchestratorError, grpc.aio.AioRpcError) as error:
            await _abort_for(context, error)
            raise

    return wrapper


def required(value: str, field: str) -> str:
    if not value:
        raise BadRequest(field, "is required")
    return value


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    def __init__(self, operations: Operations) -> None:
        self.operations = operations
        self.store = operations.store

    @handled
    async def ApprovePhase(self, request: Any, context: Any) -> Any:
        return await self.operations.approve_phase(required(request.phase_id, "phase_id"))

    @handled
    async def DispatchTask(self, request: Any, context: Any) -> Any:
        return await self.operations.dispatch_task(required(request.task_id, "task_id"))

    @handled
    async def GetPhaseDiff(self, request: Any, context: Any) -> Any:
        return await self.operations.phase_diff(required(request.phase_id, "phase_id"))

    @handled
    async def MergePhase(self, request: Any, context: Any) -> Any:
        return await self.operations.merge_phase(required(request.phase_id, "phase_id"))

    @handled
    async def RetryBlockedTask(self, request: Any, context: Any) -> Any:
        return await self.operations.retry_blocked_task(required(request.task_id, "task_id"))

    @handled
    async def StopAgent(self, request: Any, context: Any) -> Any:
        return await self.operations.stop_agent(required(request.agent_id, "agent_id"))

    @handled
    async def AnswerQuestions(self, request: Any, context: Any) -> Any:
        answers = {answer.question_id: answer.answer for answer in request.answers}
        if not answers:
            raise BadRequest("answers", "must answer the pending questions")
        return await self.operations.answer_questions(required(request.agent_id, "agent_id"), answers)

    async def StreamEvents(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """The store's log, replayed then followed; a client that reconnects with its last
        sequence misses nothing, whichever of the two services restarted."""
        forwarded = event_pb2.WatchEventsRequest(
            after_sequence=request.after_sequence, types=request.types, initiative_id=request.initiative_id
        )
        try:
            async for stored in self.store.events.WatchEvents(forwarded):
                yield stored
        except grpc.aio.AioRpcError as error:
            await _abort_for(context, error)

    async def StreamAgentOutput(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        log.debug("rpc /cw.orchestrator.v1.OrchestratorService/StreamAgentOutput (stream)")
        try:
            agent = await self.store.get_agent(required(request.agent_id, "agent_id"))
        except (OrchestratorError, grpc.aio.AioRpcError) as error:
            await _abort_for(context, error)
            return
        files, offset = files_of(agent), 0
        following = request.follow
        while True:
            data, end = await asyncio.to_thread(supervisor.read_new_output, files, offset, True)
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
                await _abort_for(context, error)
            # One more read after the agent stops running picks up its last words.
            following = agent.status == agent_pb2.AGENT_STATUS_RUNNING
