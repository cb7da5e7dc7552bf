"""The floor under the store's hot path: the same calls answered by a bare server, as ratios against
its own Health/Check.

    python -m bench.store_process --parts floor [--calls 2000]

The bare server is a grpc.aio server in its own process with nothing of ours: no interceptors, no
validation, no SQLAlchemy, no events beyond one row per write. GetTask reads one row with sqlite3
and builds the message; ListTasks reads 100 rows and builds 100 messages; CreateTask inserts the
task and one event row on a writer thread and commits with synchronous=FULL in WAL mode, as the store
does. What the store adds to each call is the distance between its ratios and these
(`--parts calls,floor` prints both from one run).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from bench.store_calls import LIST_ROWS, Seed, Target, new_task
from cw.store.v1 import task_pb2, task_pb2_grpc

FLOOR_CALLS = ["Health/Check", "GetTask", f"ListTasks ({LIST_ROWS} rows)", "CreateTask"]
_COLUMNS = "id, name, description, phase_id, create_time, update_time"


class BareTasks(task_pb2_grpc.TaskServiceServicer):
    """GetTask, ListTasks and CreateTask on raw sqlite3."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"CREATE TABLE IF NOT EXISTS tasks ({_COLUMNS}, PRIMARY KEY (id))")
        self.db.execute("CREATE INDEX IF NOT EXISTS tasks_phase ON tasks (phase_id, create_time, id)")
        self.db.execute("CREATE TABLE IF NOT EXISTS events (sequence INTEGER PRIMARY KEY, type, details, time)")
        self.writer = ThreadPoolExecutor(1)

    @staticmethod
    def _message(row: tuple[Any, ...]) -> task_pb2.Task:
        task = task_pb2.Task(id=row[0], name=row[1], description=row[2], phase_id=row[3] or "")
        task.create_time.FromSeconds(int(row[4]))
        task.update_time.FromSeconds(int(row[5]))
        return task

    def _create(self, request: task_pb2.CreateTaskRequest) -> task_pb2.Task:
        task, now = request.task, 1_800_000_000
        row = (str(uuid.uuid4()), task.name, task.description, task.phase_id or None, now, now)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(f"INSERT INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", row)
        head = self.db.execute("SELECT max(sequence) FROM events").fetchone()[0] or 0
        details = json.dumps({"id": row[0], "status": "TASK_STATUS_PENDING"})
        self.db.execute("INSERT INTO events VALUES (?, 'task:created', ?, ?)", (head + 1, details, now))
        self.db.execute("COMMIT")
        return self._message(row)

    async def CreateTask(self, request: Any, _context: Any) -> task_pb2.Task:
        return await asyncio.get_running_loop().run_in_executor(self.writer, self._create, request)

    async def GetTask(self, request: Any, _context: Any) -> task_pb2.Task:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (request.id,)).fetchall()
        return self._message(rows[0])

    async def ListTasks(self, request: Any, _context: Any) -> task_pb2.ListTasksResponse:
        query = f"SELECT {_COLUMNS} FROM tasks WHERE phase_id = ? ORDER BY create_time, id LIMIT ?"
        rows = self.db.execute(query, (request.phase_id, request.page_size)).fetchall()
        return task_pb2.ListTasksResponse(tasks=[self._message(row) for row in rows])


def _serve(path: Path, ports: Any) -> None:
    async def serve() -> None:
        server = grpc.aio.server()
        task_pb2_grpc.add_TaskServiceServicer_to_server(BareTasks(path), server)  # type: ignore[abstract]
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ports.put(port)
        await server.wait_for_termination()

    asyncio.run(serve())


def start_floor(directory: Path) -> tuple[Any, Target, Seed]:
    """The bare server in a process of its own, and the rows its calls read: (process, target,
    seed). The caller kills the process."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(directory / "floor.db", ports), daemon=True)
    process.start()
    target = Target(f"127.0.0.1:{ports.get(timeout=60)}", "", process.pid or 0)
    with grpc.insecure_channel(target.address) as channel:
        create = task_pb2_grpc.TaskServiceStub(channel).CreateTask
        ids = [create(new_task(f"row {index}", "p")).id for index in range(LIST_ROWS)]
    return process, target, Seed(ids[0], "p", tuple(ids[1:4]))
