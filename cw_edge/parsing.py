"""Requests parsed by the handler, not by gRPC: bytes that are no such message answer
INVALID_ARGUMENT naming the request (gRPC's own parsing would answer INTERNAL, which only a bug
may give)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from cw_edge.interceptor import Behaviour, Continuation, Refusal, rewrapped

MALFORMED = "request: is not a well-formed request message"


class ParsedRequests(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, refusal: Refusal) -> None:
        self._refusal = refusal

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler
        parse: Callable[[bytes], Any] = handler.request_deserializer
        return rewrapped(handler, self._parsing(parse), raw=True)

    def _parsing(self, parse: Callable[[bytes], Any]) -> Callable[[Behaviour, bool], Behaviour]:
        refusal = self._refusal

        def wrap(behaviour: Behaviour, streaming: bool) -> Behaviour:
            async def request_of(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return parse(raw)
                except DecodeError:
                    await context.abort_with_status(refusal(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED))

            if streaming:

                async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                    request = await request_of(raw, context)
                    async for response in behaviour(request, context):
                        yield response

                return stream

            async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                return await behaviour(await request_of(raw, context), context)

            return unary

        return wrap
