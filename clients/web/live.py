"""Server-sent events: the event log (the orchestrator's StreamEvents) and an agent's output
(StreamAgentOutput), each pumped from its gRPC stream on a thread into the answer.

Each message carries an `id:` (an event's sequence; the byte offset after an output chunk), so a
browser that reconnects sends `Last-Event-ID` and gets what follows it: nothing lost, nothing
twice. A page also names where its data was read (`after`, the log's head before the page read):
the stream starts there, so a change made while the page was read is still shown.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from clients.sdk.event_types import shown_by_default
from clients.web.views import Clients
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2

HEARTBEAT_SECONDS = 15.0
RECONNECT_MILLISECONDS = 1000
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_END = object()  # the stream was cut: the browser reconnects
_DONE = object()  # the stream ended by itself
# Told to the page when an agent's output is complete (the agent ended): it stops reconnecting.
OUTPUT_FINISHED = "event: finished\ndata: {}\n\n"


def resume_point(request: Request, name: str = "after") -> int:
    """The later of the page's `after` and the browser's Last-Event-ID."""
    points = [request.query_params.get(name, ""), request.headers.get("last-event-id", "")]
    return max((int(point) for point in points if point.isdigit()), default=0)


def short_status(stored: object) -> str:
    """`TASK_STATUS_IN_PROGRESS` -> `in_progress`, as the pages show statuses ("" for anything else)."""
    text = str(stored) if isinstance(stored, str) else ""
    return text.partition("_STATUS_")[2].lower() if "_STATUS_" in text else ""


def event_message(event: event_pb2.Event) -> str:
    """The event as the page's script reads it: what changed and, for a row whose status changed,
    its new status (the store's change events carry both), which the page shows at once."""
    details = json_format.MessageToDict(event.details) if event.HasField("details") else {}
    payload = {
        "sequence": event.sequence,
        "type": event.type,
        "entity_id": str(details.get("id") or event.task_id or event.phase_id or event.agent_id),
        "status": short_status(details.get("status")),
        "initiative_id": event.initiative_id,
    }
    return f"id: {event.sequence}\nevent: cw\ndata: {json.dumps(payload)}\n\n"


async def pumped(call: Any, lines: Callable[[Any], Iterator[str]], finished: str = "") -> AsyncIterator[str]:
    """What a gRPC stream yields, read on a thread, each item made into SSE text by `lines`, and
    `finished` once the stream has ended by itself (not cut); the call is cancelled when the
    browser goes away."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def hand_over(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the server stopped: its loop is closed
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        ending = _END
        try:
            for item in call:
                hand_over(item)
            ending = _DONE
        except grpc.RpcError:
            pass  # cancelled, or the service went away: the browser reconnects with Last-Event-ID
        finally:
            hand_over(ending)

    threading.Thread(target=pump, name="cw-web-stream", daemon=True).start()
    try:
        yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
        while (item := await queue.get()) not in (_END, _DONE):
            for text in lines(item):
                yield text
        if item is _DONE and finished:
            yield finished
    finally:
        call.cancel()


def events_endpoint(clients: Clients) -> Callable[[Request], Awaitable[Response]]:
    async def stream(request: Request) -> Response:
        after = resume_point(request)
        call_request = orch.StreamEventsRequest(
            after_sequence=after, initiative_id=request.query_params.get("initiative", "")
        )
        call_request.heartbeat_interval.FromTimedelta(timedelta(seconds=HEARTBEAT_SECONDS))
        call = clients.orchestrator.stub.StreamEvents(call_request)
        last = after

        def lines(event: event_pb2.Event) -> Iterator[str]:
            nonlocal last
            if event.sequence == 0:
                yield ": heartbeat\n\n"
            elif event.sequence > last:
                last = event.sequence
                if shown_by_default(event.type):
                    yield event_message(event)

        return StreamingResponse(pumped(call, lines), media_type="text/event-stream", headers=STREAM_HEADERS)

    return stream


def output_endpoint(clients: Clients) -> Callable[[Request], Awaitable[Response]]:
    async def stream(request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        start = resume_point(request, "from")
        call = clients.orchestrator.stub.StreamAgentOutput(
            orch.StreamAgentOutputRequest(agent_id=agent_id, follow=True)
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

        def lines(chunk: orch.StreamAgentOutputResponse) -> Iterator[str]:
            end = chunk.offset + len(chunk.data)
            if end <= start:
                return
            data = chunk.data[max(0, start - chunk.offset) :]
            text = decoder.decode(data)
            if text:
                yield f"id: {end}\nevent: output\ndata: {json.dumps(text)}\n\n"

        return StreamingResponse(
            pumped(call, lines, OUTPUT_FINISHED), media_type="text/event-stream", headers=STREAM_HEADERS
        )

    return stream
