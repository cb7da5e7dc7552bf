"""The floor under the store's hot path: the same calls answered by a bare server, and the store's
calls as ratios against the floor's, pair by pair.

    python -m bench.store_floor [--calls 2000] [--postgres] [--profile DIR]

The bare server is a grpc.aio server in its own process with nothing of ours: no interceptors, no
validation, no SQLAlchemy. It keeps what the store guarantees and a client can see: CreateTask
inserts the task's whole row (every column the store's tasks table has) and its created event, whose
details carry the task's values (the row serialised as JSON), numbered one past the newest, on one
writer thread, in one transaction committed with synchronous=FULL in WAL mode (on PostgreSQL: after
the store's transaction-scoped write lock, committed durably). GetTask reads one row and builds the
message; ListTasks reads 100 rows and builds 100 messages, setting the fields the store's answer
sets. What the store adds to each call is the distance between its latency and the floor's.

Run on its own, the store and the floor run side by side and each call is made to one, then to the
other (which goes first alternates), so a drift of the machine's speed touches both alike; a call's
ratio is the median of the pairs' ratios. `python -m bench.store_process --parts floor` prints the
floor's calls as ratios against its own Health/Check instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2_grpc

from bench import store_calls
from bench.store_calls import LIST_ROWS, Seed, Target, bound_call, cpu_seconds, database, new_task, store_process
from bench.store_profile import sampled
from cw.store.v1 import task_pb2, task_pb2_grpc

FLOOR_CALLS = ["Health/Check", "GetTask", f"ListTasks ({LIST_ROWS} rows)", "CreateTask"]
# The calls the store is measured against the floor on, pair by pair.
PAIRED_CALLS = ["Health/Check", f"ListTasks ({LIST_ROWS} rows)", "CreateTask"]
ROUNDS = 4
WARM_UP = 100
# The store's tasks table's columns (its model's attribute names), so a row weighs what the store's
# does; `order` is quoted everywhere (a reserved word).
_COLUMNS = (
    "id, phase_id, initiative_id, parent_task_id, name, description, type, category, priority, status, "
    '"order", summary, retry_count, create_time, update_time, merge_time, queue_time, reason, '
    "next_attempt_time, target_id, review_comment_ids, resolved_comment_ids, merge_source_task_id, "
    "budget_tokens, budget_usd, merge_source_phase_id"
)
_NAMES = [name.strip().strip('"') for name in _COLUMNS.split(",")]
_EVENT_COLUMNS = "sequence, type, details, time, initiative_id, phase_id, task_id, agent_id"
# Stored value -> enum number, for the values a created task holds.
_TYPES: dict[str, Any] = {"auto": task_pb2.TASK_TYPE_AUTO}
_CATEGORIES: dict[str, Any] = {"execute": task_pb2.TASK_CATEGORY_EXECUTE}
_PRIORITIES: dict[str, Any] = {"medium": task_pb2.TASK_PRIORITY_MEDIUM}
_STATUSES: dict[str, Any] = {"pending": task_pb2.TASK_STATUS_PENDING}
# pg_advisory_xact_lock's key: the store's writes take one such lock first (store_service/db/postgres.py).
_WRITE_LOCK = "SELECT pg_advisory_xact_lock(1)"


# The floor keeps its times as microseconds since the epoch: the cheapest to write and to show.
_TYPED = {'"order"': "BIGINT", "retry_count": "BIGINT", "create_time": "BIGINT", "update_time": "BIGINT"}
_TYPED |= {"budget_tokens": "BIGINT", "budget_usd": "DOUBLE PRECISION"}


def _schema() -> list[str]:
    columns = ", ".join(f"{name} {_TYPED.get(name, 'TEXT')}" for name in _COLUMNS.split(", "))
    return [
        f"CREATE TABLE IF NOT EXISTS floor_tasks ({columns}, PRIMARY KEY (id))",
        "CREATE INDEX IF NOT EXISTS floor_tasks_phase ON floor_tasks (phase_id, create_time, id)",
        "CREATE TABLE IF NOT EXISTS floor_events (sequence BIGINT PRIMARY KEY, type TEXT, details TEXT, "
        "time BIGINT, initiative_id TEXT, phase_id TEXT, task_id TEXT, agent_id TEXT)",
    ]


class BareTasks(task_pb2_grpc.TaskServiceServicer):
    """GetTask, ListTasks and CreateTask on the bare driver: sqlite3, or psycopg for a PostgreSQL
    conninfo."""

    def __init__(self, where: str) -> None:
        self.postgres = where.startswith(("postgresql:", "host=", "dbname="))
        self.mark = "%s" if self.postgres else "?"
        self.db: Any
        if self.postgres:
            self.db = psycopg.connect(where, autocommit=True)
        else:
            self.db = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        for statement in _schema():
            self.db.execute(statement)
        self.writer = ThreadPoolExecutor(1)

    def _rows(self, where: str, *parameters: Any) -> list[tuple[Any, ...]]:
        return list(self.db.execute(f"SELECT {_COLUMNS} FROM floor_tasks WHERE {where}", parameters).fetchall())

    @staticmethod
    def _message(row: tuple[Any, ...]) -> task_pb2.Task:
        task = task_pb2.Task(
            id=row[0],
            phase_id=row[1] or "",
            name=row[4],
            description=row[5] or "",
            type=_TYPES[row[6]],
            category=_CATEGORIES[row[7]],
            priority=_PRIORITIES[row[8]],
            status=_STATUSES[row[9]],
        )
        task.create_time.FromMicroseconds(row[13])
        task.update_time.FromMicroseconds(row[14])
        return task

    def _create(self, request: task_pb2.CreateTaskRequest) -> task_pb2.Task:
        task, now = request.task, time.time_ns() // 1000
        values: dict[str, Any] = dict.fromkeys(_NAMES)
        values |= {"id": str(uuid.uuid4()), "name": task.name, "description": task.description or None}
        values |= {"phase_id": task.phase_id or None, "type": "auto", "category": "execute", "priority": "medium"}
        values |= {"status": "pending", "order": 0, "retry_count": 0, "create_time": now, "update_time": now}
        marks = ", ".join([self.mark] * len(_NAMES))
        for statement in ("BEGIN", _WRITE_LOCK) if self.postgres else ("BEGIN IMMEDIATE",):
            self.db.execute(statement)
        self.db.execute(f"INSERT INTO floor_tasks ({_COLUMNS}) VALUES ({marks})", tuple(values.values()))
        head = self.db.execute("SELECT max(sequence) FROM floor_events").fetchone()[0] or 0
        details = json.dumps({"status": "TASK_STATUS_PENDING", **values}, default=str)
        event = (head + 1, "task:created", details, now, None, values["phase_id"], values["id"], None)
        self.db.execute(f"INSERT INTO floor_events ({_EVENT_COLUMNS}) VALUES ({', '.join([self.mark] * 8)})", event)
        self.db.execute("COMMIT")
        return self._message(tuple(values.values()))

    async def CreateTask(self, request: Any, _context: Any) -> task_pb2.Task:
        return await asyncio.get_running_loop().run_in_executor(self.writer, self._create, request)

    async def GetTask(self, request: Any, _context: Any) -> task_pb2.Task:
        return self._message(self._rows(f"id = {self.mark}", request.id)[0])

    async def ListTasks(self, request: Any, _context: Any) -> task_pb2.ListTasksResponse:
        page = f"phase_id = {self.mark} ORDER BY create_time, id LIMIT {self.mark}"
        rows = self._rows(page, request.phase_id, request.page_size)
        return task_pb2.ListTasksResponse(tasks=[self._message(row) for row in rows])


def _serve(where: str, ports: Any) -> None:
    async def serve() -> None:
        server = grpc.aio.server()
        task_pb2_grpc.add_TaskServiceServicer_to_server(BareTasks(where), server)  # type: ignore[abstract]
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ports.put(port)
        await server.wait_for_termination()

    asyncio.run(serve())


def start_floor(directory: Path, where: str = "") -> tuple[Any, Target, Seed]:
    """The bare server in a process of its own, on a SQLite file in `directory` or on the PostgreSQL
    database `where` names (a conninfo), and the rows its calls read: (process, target, seed). The
    caller kills the process."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(where or str(directory / "floor.db"), ports), daemon=True)
    process.start()
    target = Target(f"127.0.0.1:{ports.get(timeout=60)}", "", process.pid or 0)
    with grpc.insecure_channel(target.address) as channel:
        create = task_pb2_grpc.TaskServiceStub(channel).CreateTask
        phase = f"floor-{uuid.uuid4()}"
        ids = [create(new_task(f"row {index}", phase)).id for index in range(LIST_ROWS)]
    return process, target, Seed(ids[0], phase, tuple(ids[1:4]))


# ---- the store against the floor, pair by pair ---------------------------------------------------


def _one(call: Callable[[], Any]) -> float:
    begin = time.perf_counter()
    call()
    return (time.perf_counter() - begin) * 1000


def paired(store: Callable[[], Any], floor: Callable[[], Any], count: int, first: int) -> list[tuple[float, float]]:
    """`count` pairs (store ms, floor ms); which of the two goes first alternates from pair to pair."""
    pairs = []
    for index in range(count):
        if (index + first) % 2:
            floor_ms = _one(floor)
            store_ms = _one(store)
        else:
            store_ms = _one(store)
            floor_ms = _one(floor)
        pairs.append((store_ms, floor_ms))
    return pairs


@dataclass
class Paired:
    """One call's pairs (store ms, floor ms), and the CPU time each server spent on them (s)."""

    pairs: list[tuple[float, float]] = field(default_factory=list)
    store_cpu: float = 0.0
    floor_cpu: float = 0.0


def against_floor(
    store: tuple[Target, Seed], floor: tuple[Target, Seed], calls: int, names: list[str]
) -> dict[str, Paired]:
    """Each call of `names` `calls` times to the store and to the floor, in ROUNDS rounds that take
    turns between the calls; with each server's CPU time (the kernel's count for its process),
    which a busy machine disturbs less than latency."""
    results = {name: Paired() for name in names}
    with grpc.insecure_channel(store[0].address) as ours, grpc.insecure_channel(floor[0].address) as bare:
        bound = {name: (bound_call(ours, *store, name), bound_call(bare, *floor, name)) for name in names}
        for store_call, floor_call in bound.values():
            paired(store_call, floor_call, WARM_UP, 0)
        for round_number in range(ROUNDS):
            for name, (store_call, floor_call) in bound.items():
                store_before, floor_before = cpu_seconds(store[0].pid), cpu_seconds(floor[0].pid)
                results[name].pairs += paired(store_call, floor_call, calls // ROUNDS, round_number)
                results[name].store_cpu += cpu_seconds(store[0].pid) - store_before
                results[name].floor_cpu += cpu_seconds(floor[0].pid) - floor_before
    return results


def print_pairs(title: str, results: dict[str, Paired]) -> None:
    print(title)
    for name, result in results.items():
        ratios = [store_ms / floor_ms for store_ms, floor_ms in result.pairs]
        store_p50 = statistics.median(store_ms for store_ms, _ in result.pairs)
        floor_p50 = statistics.median(floor_ms for _, floor_ms in result.pairs)
        calls = len(result.pairs)
        store_cpu, floor_cpu = 1000 * result.store_cpu / calls, 1000 * result.floor_cpu / calls
        print(
            f"  {name:<22} store p50 {store_p50:7.3f} ms  floor p50 {floor_p50:7.3f} ms  "
            f"store/floor {statistics.median(ratios):5.2f}x (median of {calls} pairs)  "
            f"CPU {store_cpu:5.3f} / {floor_cpu:5.3f} ms/call = {store_cpu / max(floor_cpu, 1e-9):4.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="pairs of each call")
    parser.add_argument("--postgres", action="store_true", help="the store and the floor on PostgreSQL")
    parser.add_argument("--profile", type=Path, default=None, help="sample the store with py-spy into DIR")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        database(Path(directory), args.postgres) as db,
        store_process(Path(directory), db) as (service, target),
    ):
        rows = store_calls.seed(target)
        process, floor_target, floor_rows = start_floor(Path(directory), db if args.postgres else "")
        try:
            with sampled(service.process.pid, args.profile, "against-floor"):
                results = against_floor((target, rows), (floor_target, floor_rows), args.calls, PAIRED_CALLS)
        finally:
            process.kill()
    where = "PostgreSQL" if args.postgres else "SQLite, synchronous=FULL"
    print_pairs(f"The store against the floor ({where}); ratio: the median of store/floor over pairs", results)


if __name__ == "__main__":
    main()
