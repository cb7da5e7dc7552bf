"""WatchEvents under load: streams per identity are capped, and a stream that stops reading is
detached from the fan-out and catches up from the log, while every stream still gets every event
exactly once and in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from cw.store.v1 import event_pb2, task_pb2
from cw_edge.tokens import Identity
from store_service.api import event_feed, events
from tests.e2e.cluster import wait_for
from tests.support import ErrorDetails, RunningStore, authorized_channel, error_details, stubs

HOUR = duration_pb2.Duration(seconds=3600)
WRITERS = 4
APPENDS = 50
EVENTS_PER_APPEND = 10
# gRPC's client grows a stream's window as data arrives (BDP probing), to megabytes; without it the
# window stays at 64 KiB, so a stream whose reader stalls fills its transport buffer soon.
SMALL_WINDOW = [("grpc.http2.bdp_probe", 0)]


def _watch(api: SimpleNamespace, after: int = 0) -> Iterator[event_pb2.Event]:
    request = event_pb2.WatchEventsRequest(after_sequence=after, heartbeat_interval=HOUR)
    stream: Iterator[event_pb2.Event] = api.events.WatchEvents(request, timeout=120)
    return stream


def _head(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def test_open_streams_per_identity_are_capped(
    store: RunningStore, api: SimpleNamespace, client_api: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_STREAMS_PER_IDENTITY", 3)
    api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
    # Each stream replays the event at sequence 1 first: once it is read, the stream holds its slot.
    held = [_watch(api) for _ in range(3)]
    assert [next(stream).sequence for stream in held] == [1, 1, 1]

    refused = _refusal(api)
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.reason == "RESOURCE_EXHAUSTED" and refused.metadata["limit"] == "3"
    assert "3 WatchEvents streams" in refused.message
    # Another identity has slots of its own.
    assert next(_watch(client_api)).sequence == 1

    held[0].cancel()  # type: ignore[attr-defined]

    def reopened() -> int | None:
        try:
            return next(_watch(api)).sequence
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return None

    assert wait_for("a freed slot", reopened, timeout=30) == 1
    for stream in held[1:]:
        stream.cancel()  # type: ignore[attr-defined]


def _refusal(api: SimpleNamespace) -> ErrorDetails:
    try:
        next(_watch(api))
    except grpc.RpcError as error:
        return error_details(error)
    raise AssertionError("the stream should have been refused")


def _append_events(store: RunningStore) -> None:
    """WRITERS threads append events of 2 KiB each, APPENDS times EVENTS_PER_APPEND: megabytes in
    all, far more than a stalled stream's transport buffer holds."""

    def writer(index: int) -> None:
        with store.channel() as channel:
            api = stubs(channel)
            for number in range(APPENDS):
                details = struct_pb2.Struct()
                details.update({"writer": index, "n": number, "text": "x" * 2048})
                appended = [event_pb2.Event(type="test:filler", details=details) for _ in range(EVENTS_PER_APPEND)]
                api.events.AppendEvent(event_pb2.AppendEventRequest(events=appended), timeout=30)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _read_all(stream: Iterator[event_pb2.Event], count: int, received: list[int]) -> None:
    for event in stream:
        if event.sequence:
            received.append(event.sequence)
        if len(received) == count:
            return


def test_slow_and_fast_readers_each_get_every_event_once_in_order(
    store: RunningStore, api: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_feed, "QUEUE_EVENTS", 16)
    total = WRITERS * APPENDS * EVENTS_PER_APPEND
    fast = [_watch(api) for _ in range(3)]
    token = store.handle.auth.tokens[Identity.ORCHESTRATOR]
    stalled_channels = [authorized_channel(store.address, token, options=SMALL_WINDOW) for _ in range(3)]
    stalled = [_watch(stubs(channel)) for channel in stalled_channels]
    fast_received: list[list[int]] = [[] for _ in fast]
    readers = [
        threading.Thread(target=_read_all, args=(stream, total, received))
        for stream, received in zip(fast, fast_received, strict=True)
    ]
    for reader in readers:
        reader.start()

    _append_events(store)  # the stalled streams read nothing meanwhile
    for reader in readers:
        reader.join(120)
    wait_for("a stalled stream to be detached", lambda: store.handle.feed.detached >= 1 or None, timeout=60)

    stalled_received: list[list[int]] = [[] for _ in stalled]
    for stream, received in zip(stalled, stalled_received, strict=True):
        _read_all(stream, total, received)
        stream.cancel()  # type: ignore[attr-defined]
    for stream in fast:
        stream.cancel()  # type: ignore[attr-defined]
    for channel in stalled_channels:
        channel.close()
    assert _head(api) == total
    for received in fast_received + stalled_received:
        assert received == list(range(1, total + 1))


def test_streams_opened_together_after_commits_no_stream_saw_each_get_every_event(api: SimpleNamespace) -> None:
    """The feed skips reading commits while no stream listens; streams that then open at once each
    learn the log's head, and none starts past events it never got."""
    for _round in range(5):
        for _ in range(3):
            api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
        head = _head(api)
        request = event_pb2.WatchEventsRequest(after_sequence=0, heartbeat_interval=HOUR)
        streams = [api.events.WatchEvents(request, timeout=30) for _ in range(6)]
        for stream in streams:
            received: list[int] = []
            _read_all(stream, head, received)
            stream.cancel()
            assert received == list(range(1, head + 1))
