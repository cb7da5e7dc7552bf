"""The SDK's resumable event stream and its connection settings, without a server: streams that
fail the way gRPC streams fail."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import grpc
import pytest

from clients.sdk import NotFoundError, OrchestratorClient, StoreClient
from clients.sdk.calls import StreamState, resumable
from clients.sdk.channel import CONNECT_TIMEOUT_SECONDS
from cw.store.v1 import event_pb2


class StreamBroke(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__()
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "Connection refused"

    def trailing_metadata(self) -> tuple[()]:
        return ()


Opener = Callable[[int], Iterator[event_pb2.Event]]


def events(*sequences: int) -> list[event_pb2.Event]:
    return [event_pb2.Event(sequence=s, type="heartbeat" if s == 0 else "task:created") for s in sequences]


def scripted_streams(*openings: list[event_pb2.Event] | grpc.StatusCode) -> tuple[list[int], Opener]:
    """Each opening of the stream plays the next item: events (then the stream breaks), or a code
    the opening fails with. Records the `after_sequence` of every opening."""
    asked: list[int] = []
    plays = iter(openings)

    def open_stream(after: int) -> Iterator[event_pb2.Event]:
        asked.append(after)
        play = next(plays)
        if isinstance(play, grpc.StatusCode):
            raise StreamBroke(play)
        yield from play
        raise StreamBroke(grpc.StatusCode.UNAVAILABLE)

    return asked, open_stream


def test_an_outage_is_told_once_and_the_stream_resumes_after_the_last_event() -> None:
    asked, open_stream = scripted_streams(
        events(1, 2),
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAVAILABLE,
        events(0, 2, 3),  # a heartbeat first, then a replayed duplicate, then news
    )
    told: list[StreamState] = []
    stream = resumable(open_stream, 0, on_state=told.append)
    assert [next(stream).sequence for _ in range(3)] == [1, 2, 3]
    assert asked == [0, 2, 2, 2]
    assert [(s.connected, s.after_sequence) for s in told] == [(False, 2), (True, 2)]
    assert told[0].error is not None and "Connection refused" in told[0].error.message
    assert told[0].retry_in_seconds > 0


def test_heartbeats_pass_only_when_asked_for() -> None:
    _, quiet = scripted_streams(events(0, 1, 0, 2))
    assert [e.sequence for e in _take(resumable(quiet, 0), 2)] == [1, 2]
    _, beating = scripted_streams(events(0, 1, 0, 2))
    assert [e.sequence for e in _take(resumable(beating, 0, heartbeats=True), 4)] == [0, 1, 0, 2]


def test_a_refused_request_is_an_error_not_an_outage() -> None:
    _, open_stream = scripted_streams(grpc.StatusCode.NOT_FOUND)
    told: list[StreamState] = []
    with pytest.raises(NotFoundError):
        next(resumable(open_stream, 0, on_state=told.append))
    assert told == []


def _take(stream: Iterator[event_pb2.Event], count: int) -> list[event_pb2.Event]:
    return [next(stream) for _ in range(count)]


def test_clients_give_up_connecting_after_one_second() -> None:
    assert CONNECT_TIMEOUT_SECONDS == 1.0
    for client in (StoreClient, OrchestratorClient):
        default = inspect.signature(client.ensure_reachable).parameters["timeout"].default
        assert default == CONNECT_TIMEOUT_SECONDS, client
