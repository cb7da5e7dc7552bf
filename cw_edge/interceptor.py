"""The server side of authentication: a bearer token on every call but health checks, the caller's
identity for the handlers, and the calls only the orchestrator may make.

The identity lives in a context variable set inside the wrapped handler. grpc.aio runs each call in
its own task, so the value never leaks from one call into another. It does not follow work handed to
a thread pool (`run_in_executor` copies no context): read it in the async handler, before that.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import grpc

from cw_edge.tokens import Identity

log = logging.getLogger("cw.auth")
HEALTH_PREFIX = "/grpc.health.v1.Health/"
# Builds the refusal each service answers with, in its own error model: (code, message) -> status.
Refusal = Callable[[grpc.StatusCode, str], grpc.Status]
Behaviour = Callable[..., Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]

_IDENTITY: ContextVar[Identity | None] = ContextVar("cw_identity", default=None)
_HANDLER_KINDS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def current_identity() -> Identity | None:
    """Who makes the call being handled; None outside a call."""
    return _IDENTITY.get()


def presented_token(metadata: Sequence[tuple[str, Any]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip().encode() if scheme.lower() == "bearer" and token.strip() else None
    return None


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self, tokens: Mapping[Identity, str], refusal: Refusal, orchestrator_only: Collection[str] = ()
    ) -> None:
        self._tokens = [(token.encode(), identity) for identity, token in tokens.items()]
        self._refusal = refusal
        self._orchestrator_only = frozenset(orchestrator_only)
        # (method, identity) -> (the handler, it wrapped): a handler is wrapped once, not per call.
        self._wrapped: dict[tuple[str, Identity | None], tuple[grpc.RpcMethodHandler, Any]] = {}

    def identify(self, presented: bytes | None) -> Identity | None:
        """Compares against every known token in constant time, so timing tells nothing."""
        found = None
        for token, identity in self._tokens:
            if presented is not None and hmac.compare_digest(presented, token):
                found = identity
        return found

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        presented = presented_token(details.invocation_metadata)
        identity = self.identify(presented)
        if identity is None or (details.method in self._orchestrator_only and identity is not Identity.ORCHESTRATOR):
            return self._refused(handler, details.method, identity, presented)
        # Only registered methods get here (an unknown one has no handler): the table stays small.
        key = (details.method, identity)
        wrapped = self._wrapped.get(key)
        if wrapped is None or wrapped[0] is not handler:
            wrapped = self._wrapped[key] = (handler, rewrapped(handler, _as(identity)))
        return wrapped[1]

    def _refused(
        self, handler: grpc.RpcMethodHandler, method: str, identity: Identity | None, presented: bytes | None
    ) -> Any:
        """A handler that refuses the call, and the refusal logged."""
        if identity is None:
            why = "no bearer token" if presented is None else "the bearer token is not valid here"
            log.info("refused %s: %s", method, why)
            message = f"{why}: send `authorization: Bearer <token>` (clients: $CW_HOME/auth/client.token)"
            return rewrapped(handler, _refusing(self._refusal(grpc.StatusCode.UNAUTHENTICATED, message)))
        log.info("refused %s to the %s identity", method, identity)
        message = f"{method.rsplit('/', 1)[-1]} is for the orchestrator only"
        return rewrapped(handler, _refusing(self._refusal(grpc.StatusCode.PERMISSION_DENIED, message)))


def rewrapped(handler: grpc.RpcMethodHandler, wrap: Callable[[Behaviour, bool], Behaviour], raw: bool = False) -> Any:
    """The same handler, of the same kind, with its behaviour wrapped; with `raw`, the behaviour
    gets the request's bytes (and parses them itself)."""
    for kind, make in _HANDLER_KINDS.items():
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return make(
                wrap(behaviour, handler.response_streaming),
                request_deserializer=None if raw else handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _as(identity: Identity) -> Callable[[Behaviour, bool], Behaviour]:
    def wrap(behaviour: Behaviour, streaming: bool) -> Behaviour:
        if streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                _IDENTITY.set(identity)
                async for response in behaviour(request, context):
                    yield response

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            _IDENTITY.set(identity)
            return await behaviour(request, context)

        return unary

    return wrap


def _refusing(status: grpc.Status) -> Callable[[Behaviour, bool], Behaviour]:
    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort_with_status(status)

    return lambda _behaviour, _streaming: refuse
