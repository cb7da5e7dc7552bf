"""Store latency, as ratios against the cheapest RPC measured in the same run.

    python -m bench.store_latency [--calls N]

Prints the latency of TaskService/GetTask next to grpc.health.v1.Health/Check on one server, and
the cost of CreateTask (a write that commits) under synchronous=FULL and synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.store_calls import timed
from clients.sdk.credentials import BearerToken
from cw.store.v1 import task_pb2, task_pb2_grpc
from cw_edge.tokens import Identity
from store_service import server
from store_service.db.engine import Synchronous


def _timings(call: Callable[[], object], count: int) -> list[float]:
    timed(call, min(200, count))  # warm-up
    return timed(call, count)


def _summary(name: str, samples: list[float], baseline: float) -> str:
    median = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    return f"{name:<34} median {median:6.3f} ms  p99 {p99:6.3f} ms  ratio {median / baseline:5.2f}x"


def _measure(synchronous: Synchronous, calls: int) -> dict[str, list[float]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "store.db"
        running = asyncio.run_coroutine_threadsafe(server.start(path, "127.0.0.1:0", synchronous), loop).result()
        token = BearerToken(running.auth.tokens[Identity.CLIENT])
        with grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{running.port}"), token) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            tasks = task_pb2_grpc.TaskServiceStub(channel)
            task = tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="bench")))
            results = {
                "Health/Check": _timings(lambda: health.Check(health_pb2.HealthCheckRequest()), calls),
                "TaskService/GetTask": _timings(lambda: tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)), calls),
                f"TaskService/CreateTask ({synchronous})": _timings(
                    lambda: tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="w"))), calls
                ),
            }
        asyncio.run_coroutine_threadsafe(running.stop(0), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    full = _measure("FULL", calls)
    normal = _measure("NORMAL", calls)
    baseline = statistics.median(full["Health/Check"])
    print(f"{calls} sequential calls each, one client, loopback; ratios against Health/Check (FULL run)")
    for name, samples in {**full, "TaskService/CreateTask (NORMAL)": normal["TaskService/CreateTask (NORMAL)"]}.items():
        print(_summary(name, samples, baseline))


if __name__ == "__main__":
    main()
