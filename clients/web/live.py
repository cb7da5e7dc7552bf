"""Server-sent events: the event log (the orchestrator's StreamEvents) and an agent's output
(StreamAgentOutput), each pumped from its gRPC stream on a thread into the answer.

Each message carries an `id:` (an event's sequence; the byte offset after an output chunk), so a
browser that reconnects sends `Last-Event-ID` and gets what follows it: nothing lost, nothing
twice. A page also names where its data was read (`after`, the log's head before the page read):
the stream starts there, so a change made while the page was read is still shown.

A board (`rows=tasks`) is sent a created task's row with its event, read with one GetTask on the
stream's own thread: the page adds it at once instead of reading the board again, so a new task
shows about as soon as an event follower has it (bench/web_pages.py).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from clients.sdk import NotFoundError
from clients.sdk.event_types import shown_by_default
from clients.web.views import TASK_STATUS_NAMES, Clients, TaskRow
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2, task_pb2

HEARTBEAT_SECONDS = 15.0
RECONNECT_MILLISECONDS = 1000
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_END = object()  # the stream was cut: the browser reconnects
_DONE = object()  # the stream ended by itself
# Told to the page when an agent's output is complete (the agent ended): it stops reconnecting.
OUTPUT_FINISHED = "event: finished\ndata: {}\n\n"
TASK_CREATED = "task:created"


class Rows(enum.StrEnum):
    """What rows a page's event stream carries beside the events (`rows=`)."""

    NONE = ""
    TASKS = "tasks"  # a board: a created task's row


def resume_point(request: Request, name: str = "after") -> int:
    """The later of the page's `after` and the browser's Last-Event-ID."""
    points = [request.query_params.get(name, ""), request.headers.get("last-event-id", "")]
    return max((int(point) for point in points if point.isdigit()), default=0)


def short_status(stored: object) -> str:
    """`TASK_STATUS_IN_PROGRESS` -> `in_progress`, as the pages show statuses ("" for anything else)."""
    text = str(stored) if isinstance(stored, str) else ""
    return text.partition("_STATUS_")[2].lower() if "_STATUS_" in text else ""


def event_message(event: event_pb2.Event, row: task_pb2.Task | None = None) -> str:
    """The event as the page's script reads it: what changed and, for a row whose status changed,
    its new status (the store's change events carry both), which the page shows at once; with
    `row`, a created task's board row (escaped as the board's own rows are) and its phase."""
    details = json_format.MessageToDict(event.details) if event.HasField("details") else {}
    payload: dict[str, object] = {
        "sequence": event.sequence,
        "type": event.type,
        "entity_id": str(details.get("id") or event.task_id or event.phase_id or event.agent_id),
        "status": short_status(details.get("status")),
        "initiative_id": event.initiative_id,
    }
    if row is not None:
        status = TASK_STATUS_NAMES.get(row.status, "")
        payload |= {"phase_id": row.phase_id, "row": str(TaskRow(row.id, row.name, status, "", row.reason).html)}
    return f"id: {event.sequence}\nevent: cw\ndata: {json.dumps(payload)}\n\n"


def created_task(clients: Clients, event: event_pb2.Event) -> task_pb2.Task | None:
    """The task a `task:created` event announces, as it is now, if it belongs on a phase's board
    (None for any other event, a planning run, or a task already deleted)."""
    if event.type != TASK_CREATED or not event.task_id:
        return None
    try:
        found = clients.store.get_task(event.task_id)
    except NotFoundError:
        return None
    return found if found.phase_id else None


def _as_is(item: Any) -> Any:
    return item


async def pumped(
    call: Any, lines: Callable[[Any], Iterator[str]], finished: str = "", prepare: Callable[[Any], Any] = _as_is
) -> AsyncIterator[str]:
    """What a gRPC stream yields, read on a thread and `prepare`d there (blocking reads may go
    there, not on the server's loop), each item made into SSE text by `lines`, and `finished`
    once the stream has ended by itself (not cut); the call is cancelled when the browser goes
    away."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def hand_over(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the server stopped: its loop is closed
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        ending = _END
        try:
            for item in call:
                hand_over(prepare(item))
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
        with_rows = request.query_params.get("rows", "") == Rows.TASKS

        def prepare(event: event_pb2.Event) -> tuple[event_pb2.Event, task_pb2.Task | None]:
            return event, created_task(clients, event) if with_rows else None

        def lines(prepared: tuple[event_pb2.Event, task_pb2.Task | None]) -> Iterator[str]:
            nonlocal last
            event, row = prepared
            if event.sequence == 0:
                yield ": heartbeat\n\n"
            elif event.sequence > last:
                last = event.sequence
                if shown_by_default(event.type):
                    yield event_message(event, row)

        pump = pumped(call, lines, prepare=prepare)
        return StreamingResponse(pump, media_type="text/event-stream", headers=STREAM_HEADERS)

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
