"""What every SDK client shares: error translation, paging, enum names, resumable event streams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from clients.sdk.errors import CwError, InvalidArgumentError, from_rpc_error

if TYPE_CHECKING:
    from cw.orchestrator.v1 import orchestrator_pb2
    from cw.store.v1 import event_pb2

T = TypeVar("T")
R = TypeVar("R", "event_pb2.WatchEventsRequest", "orchestrator_pb2.StreamEventsRequest")
PAGE_SIZE = 1000
RECONNECT_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0)


def call(method: Callable[..., T], request: Any) -> T:
    """One unary call; a failure becomes a typed CwError."""
    try:
        return method(request)
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


def request_id() -> str:
    """Makes a create safe to retry: the server returns the first result for a repeated id."""
    return str(uuid.uuid4())


def every_page(method: Callable[..., Any], request: Any, field: str) -> list[Any]:
    request.page_size = PAGE_SIZE
    rows: list[Any] = []
    while True:
        page = call(method, request)
        rows.extend(getattr(page, field))
        if not page.next_page_token:
            return rows
        request.page_token = page.next_page_token


def with_heartbeat(request: R, seconds: float | None) -> R:
    """Asks a stream for heartbeats when idle: how a reconnected, quiet stream shows it is back."""
    if seconds:
        request.heartbeat_interval.FromTimedelta(timedelta(seconds=seconds))
    return request


def enum_value(enum: Any, text: str) -> Any:
    """`"in_progress"` or `"TASK_STATUS_IN_PROGRESS"` to the value of `TaskStatus` (an int)."""
    prefix = "_".join(enum.Name(0).split("_")[:-1]) + "_"
    name = text.upper() if text.upper().startswith(prefix) else prefix + text.upper().replace("-", "_")
    try:
        return int(enum.Value(name))
    except ValueError:
        names = [value.name for value in enum.DESCRIPTOR.values if value.number]
        choices = ", ".join(n.removeprefix(prefix).lower() for n in names)
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"{text!r} is not one of: {choices}") from None


def enum_name(enum: Any, value: int) -> str:
    prefix = "_".join(enum.Name(0).split("_")[:-1]) + "_"
    return str(enum.Name(value)).removeprefix(prefix).lower()


@dataclass(frozen=True)
class StreamState:
    """Told to a stream's listener when the stream is lost (`error` set) and when it is back.
    `after_sequence` is where the stream resumes: the last sequence it delivered."""

    connected: bool
    after_sequence: int
    error: CwError | None = None
    retry_in_seconds: float = 0.0


StreamListener = Callable[[StreamState], None]
_RECONNECTABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL)


def resumable(
    open_stream: Callable[[int], Iterator[event_pb2.Event]],
    after_sequence: int,
    follow: bool = True,
    on_state: StreamListener | None = None,
    heartbeats: bool = False,
) -> Iterator[event_pb2.Event]:
    """Events in order, each once: a dropped stream is reopened, with back-off, from the last
    sequence seen. Heartbeats (sequence 0) are passed on only with `heartbeats`. The first failure
    tells `on_state` the stream is lost; the first message after it (heartbeat or event), that it
    is back. Ends only when the caller stops iterating."""
    last, failures = after_sequence, 0
    notify = on_state or (lambda _state: None)
    while True:
        try:
            for event in open_stream(last):
                if failures:
                    failures = 0
                    notify(StreamState(True, last))
                if event.sequence == 0:
                    if heartbeats:
                        yield event
                    continue
                if event.sequence <= last:
                    continue
                last = event.sequence
                yield event
            if not follow:
                return
        except grpc.RpcError as error:
            if error.code() not in _RECONNECTABLE:
                raise from_rpc_error(error) from None
            pause = RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF) - 1)]
            if not failures:
                notify(StreamState(False, last, from_rpc_error(error), pause))
            time.sleep(pause)
            failures += 1
