"""Two store replicas on one PostgreSQL database: the event log stays gap-free under concurrent
writers on both (one write transaction held open meanwhile), followers on either replica see every
sequence once and in order, idempotent creates hold across replicas, and a replica whose LISTEN
connection dropped listens again and misses nothing."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.protobuf import duration_pb2
from sqlalchemy.orm import Session

from cw.store.v1 import event_pb2, task_pb2
from store_service.database import create_engines
from store_service.db import postgres
from store_service.db.location import PostgresDatabase
from store_service.repositories.sqlalchemy.event import SqlAlchemyEventRepository
from tests.e2e.cluster import wait_for
from tests.postgres import PostgresServer
from tests.support import RunningStore, store_in_thread, stubs

WRITERS_PER_REPLICA = 2
WRITES_PER_WRITER = 25
LAST = "test:last"
HOUR = duration_pb2.Duration(seconds=3600)
IDEMPOTENT_ROUNDS = 10


@pytest.fixture
def replicas(postgres_database: PostgresDatabase, tmp_path: Path) -> Iterator[tuple[RunningStore, RunningStore]]:
    """Two stores on one database, sharing their home (token files and secrets key)."""
    with store_in_thread(postgres_database, tmp_path) as first, store_in_thread(postgres_database, tmp_path) as second:
        yield first, second


@contextmanager
def held_write(database: PostgresDatabase) -> Iterator[int]:
    """A store's write transaction (a replica's writer engine) that appended one event and stays
    open until the block ends, then commits; yields that event's sequence."""
    writer, reader = create_engines(database, readers=1)
    reader.dispose()
    try:
        with Session(writer) as session:
            yield SqlAlchemyEventRepository(session).append("test:held", {}).sequence
            session.commit()
    finally:
        writer.dispose()


def _activity(server: PostgresServer, database: PostgresDatabase, condition: str) -> int:
    """How many of `database`'s backends match `condition` (SQL over pg_stat_activity)."""
    query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND {condition}"
    with server.admin() as admin:
        found = admin.execute(query, (database.url.database,)).fetchone()
    return int(found[0]) if found else 0


def _waiting_for_the_write_lock(server: PostgresServer, database: PostgresDatabase) -> int:
    return _activity(server, database, "wait_event_type = 'Lock' AND wait_event = 'advisory'")


def _listening(server: PostgresServer, database: PostgresDatabase) -> int:
    return _activity(server, database, f"query = 'LISTEN {postgres.CHANNEL}'")


def _head(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def _all_sequences(api: SimpleNamespace) -> list[int]:
    """Every sequence ListEvents pages through."""
    sequences: list[int] = []
    while True:
        after = sequences[-1] if sequences else 0
        page = api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=after, page_size=100))
        sequences += [event.sequence for event in page.events]
        if page.last_sequence >= page.head_sequence:
            return sequences


class Follower:
    """A WatchEvents stream on one replica, read on a thread of its own until the event `until`."""

    def __init__(self, store: RunningStore, until: str = LAST) -> None:
        self.received: list[int] = []
        self._channel = store.channel()
        request = event_pb2.WatchEventsRequest(after_sequence=0, heartbeat_interval=HOUR)
        self._stream = stubs(self._channel).events.WatchEvents(request, timeout=120)
        self._until = until
        self._thread = threading.Thread(target=self._read)
        self._thread.start()

    def _read(self) -> None:
        for event in self._stream:
            if event.sequence:
                self.received.append(event.sequence)
            if event.type == self._until:
                return

    def finish(self) -> list[int]:
        self._thread.join(120)
        self._stream.cancel()
        self._channel.close()
        return self.received


def _writer(store: RunningStore, index: int) -> Callable[[], None]:
    """A client of one replica writing WRITES_PER_WRITER times: task updates, or bare events."""

    def write() -> None:
        with store.channel() as channel:
            api = stubs(channel)
            task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name=f"w{index}")), timeout=60)
            for number in range(WRITES_PER_WRITER):
                if index % 2:
                    update = task_pb2.Task(id=task.id, order=number + 1)
                    api.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task=update), timeout=60)
                else:
                    appended = [event_pb2.Event(type="test:write")]
                    api.events.AppendEvent(event_pb2.AppendEventRequest(events=appended), timeout=60)

    return write


def test_followers_on_two_replicas_see_every_sequence_once_in_order_while_a_write_is_held_open(
    replicas: tuple[RunningStore, RunningStore], postgres_server: PostgresServer, postgres_database: PostgresDatabase
) -> None:
    first, second = replicas
    followers = [Follower(first), Follower(second)]
    apis = [stubs(store.channel()) for store in replicas]
    for api in apis:
        api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="before")))
    stores = [store for store in replicas for _ in range(WRITERS_PER_REPLICA)]
    threads = [threading.Thread(target=_writer(store, index)) for index, store in enumerate(stores)]

    with held_write(postgres_database) as held:
        for thread in threads:
            thread.start()
        # Each replica's writer now waits for the lock the held transaction has.
        wait_for(
            "both replicas' writers to wait",
            lambda: _waiting_for_the_write_lock(postgres_server, postgres_database) == 2,
        )
        # Nothing after the held event is visible, nor the held event itself: no follower can pass it.
        assert [_head(api) for api in apis] == [held - 1, held - 1]
    for thread in threads:
        thread.join(120)
    apis[0].events.AppendEvent(event_pb2.AppendEventRequest(events=[event_pb2.Event(type=LAST)]))

    head = _head(apis[1])
    assert head > held + len(stores) * WRITES_PER_WRITER
    every = list(range(1, head + 1))
    assert [follower.finish() for follower in followers] == [every, every]
    assert [_all_sequences(api) for api in apis] == [every, every]


def _create_together(together: threading.Barrier, request: task_pb2.CreateTaskRequest, api: SimpleNamespace) -> str:
    """Sends `request` once every party of `together` is ready to send it too."""
    together.wait(30)
    return str(api.tasks.CreateTask(request, timeout=60).id)


def test_the_same_create_sent_to_both_replicas_at_once_makes_one_row(
    replicas: tuple[RunningStore, RunningStore],
) -> None:
    channels = [store.channel() for store in replicas]
    apis = [stubs(channel) for channel in channels]
    with ThreadPoolExecutor(2) as pool:
        for number in range(IDEMPOTENT_ROUNDS):
            request = task_pb2.CreateTaskRequest(task=task_pb2.Task(name=f"t{number}"), request_id=f"create-{number}")
            send = functools.partial(_create_together, threading.Barrier(2), request)
            first_id, second_id = pool.map(send, apis)
            assert first_id == second_id
    listed = apis[1].tasks.ListTasks(task_pb2.ListTasksRequest(page_size=100)).tasks
    assert sorted(task.name for task in listed) == sorted(f"t{number}" for number in range(IDEMPOTENT_ROUNDS))
    for channel in channels:
        channel.close()


def test_a_replica_whose_listening_connection_dropped_listens_again_and_misses_nothing(
    replicas: tuple[RunningStore, RunningStore], postgres_server: PostgresServer, postgres_database: PostgresDatabase
) -> None:
    first, second = replicas
    wait_for("both replicas to listen", lambda: _listening(postgres_server, postgres_database) == 2)
    follower = Follower(first)
    writer = stubs(second.channel())
    writer.events.AppendEvent(event_pb2.AppendEventRequest(events=[event_pb2.Event(type="test:before")]))
    wait_for("the first replica's follower to see the second's write", lambda: follower.received == [1])

    name = postgres_database.url.database
    with postgres_server.admin() as admin:
        # No new connection while the listeners are gone: the write below is announced to nobody.
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND query = %s",
            (name, f"LISTEN {postgres.CHANNEL}"),
        )
        wait_for("the listeners to be gone", lambda: _listening(postgres_server, postgres_database) == 0)
        writer.events.AppendEvent(event_pb2.AppendEventRequest(events=[event_pb2.Event(type=LAST)]))
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    wait_for("the first replica's follower to see the write", lambda: follower.received == [1, 2], timeout=30)
    assert follower.finish() == [1, 2]
    wait_for("both replicas to listen again", lambda: _listening(postgres_server, postgres_database) == 2)


def _terminate_every_connection(server: PostgresServer, database: PostgresDatabase) -> None:
    """Ends every connection to `database`, as a server restart would, and waits until they are gone."""
    query = "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    with server.admin() as admin:
        ended = [pid for _, pid in admin.execute(query, (database.url.database,)).fetchall()]
    assert ended
    alive = f"pid IN ({', '.join(str(pid) for pid in ended)})"
    wait_for("the connections to end", lambda: _activity(server, database, alive) == 0)


def test_replicas_whose_connections_were_all_ended_serve_on_and_miss_nothing(
    replicas: tuple[RunningStore, RunningStore], postgres_server: PostgresServer, postgres_database: PostgresDatabase
) -> None:
    follower = Follower(replicas[0])
    apis = [stubs(store.channel()) for store in replicas]
    created = apis[0].tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="before")))
    wait_for("the follower to see the create", lambda: len(follower.received) == 1)

    _terminate_every_connection(postgres_server, postgres_database)
    # The next calls, reads and writes on either replica, connect again rather than fail.
    assert apis[1].tasks.GetTask(task_pb2.GetTaskRequest(id=created.id)).name == "before"
    apis[1].tasks.UpdateTask(task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=created.id, order=2)))
    apis[0].events.AppendEvent(event_pb2.AppendEventRequest(events=[event_pb2.Event(type=LAST)]))
    head = _head(apis[0])
    assert follower.finish() == list(range(1, head + 1))
