"""The edge of every RPC: parses and checks the request (`validation`), maps domain errors to gRPC
status codes with the rich error model, and hides anything unexpected behind INTERNAL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from cw_edge.interceptor import current_identity
from store_service.api.validation import parse_request
from store_service.domain.errors import (
    Aborted,
    AlreadyExists,
    DatabaseDamaged,
    FailedPrecondition,
    InvalidArgument,
    LeaseRefused,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    StoreError,
    Unauthenticated,
)

log = logging.getLogger("cw.rpc")
DOMAIN = "store.cw"
# What a client learns of a bug: nothing of the server (no paths, no SQL); the log has the rest.
INTERNAL_MESSAGE = "internal error in the store; its log has the details"
MAX_TEXT = 300

_CODES: list[tuple[type[StoreError], int]] = [
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (OutOfRange, code_pb2.OUT_OF_RANGE),
    (Aborted, code_pb2.ABORTED),
    (LeaseRefused, code_pb2.ABORTED),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    # gRPC's code for "unrecoverable data loss or corruption".
    (DatabaseDamaged, code_pb2.DATA_LOSS),
]


def _cut(text: str) -> str:
    """Errors travel in trailing metadata, which gRPC caps at a few KiB: quoted input is cut."""
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}..."


def to_status(error: StoreError) -> grpc.Status:
    code = next((code for kind, code in _CODES if isinstance(error, kind)), code_pb2.FAILED_PRECONDITION)
    metadata = {key: _cut(value) for key, value in error.metadata.items()}
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)]
    if isinstance(error, InvalidArgument):
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=_cut(v.field), description=_cut(v.description))
            for v in error.violations
        ]
        details.append(error_details_pb2.BadRequest(field_violations=violations))
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(status_pb2.Status(code=code, message=_cut(error.message), details=packed))


def refusal_status(code: grpc.StatusCode, message: str) -> grpc.Status:
    """What the authentication interceptor answers with, in this same error model."""
    error = Unauthenticated(message) if code == grpc.StatusCode.UNAUTHENTICATED else PermissionDenied(message)
    return to_status(error)


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler: logs the call at debug level, parses and checks the request itself (so
    a malformed one is INVALID_ARGUMENT, not gRPC's INTERNAL), turns a StoreError into its status
    and any other exception into a bare INTERNAL."""

    def __init__(self) -> None:
        # method -> (the handler, it wrapped): a handler is wrapped once, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or not method.startswith("/cw."):
            return handler
        wrapped = self._wrapped.get(method)
        if wrapped is None or wrapped[0] is not handler:
            wrapped = self._wrapped[method] = (handler, _wrap(handler, method))
        return wrapped[1]


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary, method, handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _stream(handler.unary_stream, method, handler.request_deserializer),
            response_serializer=_bytes_as_they_are(handler.response_serializer),
        )
    return handler


def _bytes_as_they_are(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A stream may yield responses it serialized itself: WatchEvents serializes each event once
    for all the streams it goes to (api/event_feed.py)."""

    def serialized(response: Any) -> bytes:
        return response if isinstance(response, bytes) else serialize(response)

    return serialized


def _caller() -> str:
    """Who calls, for the debug log (benchmarks count the orchestrator's calls by it)."""
    identity = current_identity()
    return identity.value if identity is not None else "nobody"


def _unary(behaviour: Callable[..., Any], method: str, parse: Callable[[bytes], Any]) -> Callable[..., Any]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("rpc %s by %s", method, _caller())
        try:
            return await behaviour(parse_request(raw, parse), context)
        except StoreError as error:
            await context.abort_with_status(to_status(error))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("rpc %s failed", method)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    return handle


def _stream(
    behaviour: Callable[..., AsyncIterator[Any]], method: str, parse: Callable[[bytes], Any]
) -> Callable[..., Any]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        log.debug("rpc %s (stream) by %s", method, _caller())
        try:
            async for response in behaviour(parse_request(raw, parse), context):
                yield response
        except StoreError as error:
            await context.abort_with_status(to_status(error))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("rpc %s (stream) failed", method)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    return handle
