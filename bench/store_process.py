"""The store's hot path, as ratios against Health/Check measured in the same run.

    python -m bench.store_process [--calls 2000] [--clients 8] [--followers 100] [--unread 200]
                                  [--profile DIR] [--postgres] [--parts P,..] [--only CALL,..]

The store runs as its own process (`python -m store_service`, synchronous=FULL, its token files in
a temporary directory; with `--postgres`, on a PostgreSQL server the run starts); every client runs
in this process or in processes of their own, never in the store's. Five parts:

1. one client, calls one after another: Health/Check (the baseline: no database, no
   authentication), GetTask, ListTasks (a page of 100 rows), CreateTask, UpdateTask with a mask,
   AppendEvent with three changes; the median of each as a ratio to Health/Check's;
2. the same calls from 8 concurrent clients (one connection each), as ratios again;
3. WatchEvents fan-out: CreateTask every 10 ms with 0, 1 and 100 followers reading (the three
   taking turns, ROUNDS times); from each write's request to its event reaching every follower
   (p50, p99), and the write's own latency with followers as a ratio to none;
4. GetTask while tasks are written every 10 ms, with 200 WatchEvents streams opened and never
   read, against none;
5. the floor: GetTask, ListTasks and CreateTask answered by a bare grpc.aio server on raw sqlite3
   (bench/store_floor.py), as ratios against its own Health/Check.

With `--profile DIR` each part is sampled with py-spy (a dev dependency) and the functions that
hold the most samples in the store are printed after it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import store_calls
from bench.store_calls import CALLS, Seed, Target, bound_call, database, store_process, timed
from bench.store_floor import FLOOR_CALLS, start_floor
from bench.store_profile import sampled

BASELINE = "Health/Check"
ROUNDS = 4
WARM_UP = 100
WRITE_INTERVAL = 0.01


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _row(name: str, samples: list[float], baseline: float, extra: str = "") -> str:
    median = statistics.median(samples)
    return f"  {name:<30} p50 {median:7.3f} ms  p99 {_p99(samples):7.3f} ms  {median / baseline:5.2f}x{extra}"


def one_client(
    target: Target, rows: Seed, calls: int, names: list[str]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each call of `names` `calls` times, in ROUNDS rounds that take turns, so a drift of the
    machine's speed touches every call alike. Returns the samples and the store's CPU time per call
    (ms)."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    cpu = dict.fromkeys(names, 0.0)
    with grpc.insecure_channel(target.address) as channel:
        bound = {name: bound_call(channel, target, rows, name) for name in names}
        for call in bound.values():
            timed(call, WARM_UP)
        for _ in range(ROUNDS):
            for name, call in bound.items():
                before = store_calls.cpu_seconds(target.pid)
                samples[name] += timed(call, calls // ROUNDS)
                cpu[name] += store_calls.cpu_seconds(target.pid) - before
    return samples, {name: 1000 * seconds / len(samples[name]) for name, seconds in cpu.items()}


async def _concurrent_call(
    target: Target, rows: Seed, name: str, clients: int, calls: int
) -> tuple[list[float], float]:
    channels = [grpc.aio.insecure_channel(target.address) for _ in range(clients)]
    bound = [bound_call(channel, target, rows, name) for channel in channels]
    samples: list[float] = []

    async def client(call: Callable[[], Any], count: int) -> None:
        for _ in range(count):
            begin = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - begin) * 1000)

    await asyncio.gather(*(client(call, WARM_UP // clients + 1) for call in bound))
    samples.clear()
    begin = time.perf_counter()
    await asyncio.gather(*(client(call, calls // clients) for call in bound))
    elapsed = time.perf_counter() - begin
    for channel in channels:
        await channel.close()
    return samples, len(samples) / elapsed


def concurrent_clients(
    target: Target, rows: Seed, calls: int, clients: int, names: list[str]
) -> dict[str, tuple[list[float], float]]:
    results: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in names}
    for _ in range(ROUNDS):
        for name in names:
            samples, rate = asyncio.run(_concurrent_call(target, rows, name, clients, calls // ROUNDS))
            results[name] = (results[name][0] + samples, results[name][1] + rate / ROUNDS)
    return results


@dataclass
class FanOut:
    # Each write's latency, and from its request to its event reaching the last follower (ms).
    writes: list[float]
    deliveries: list[float]
    # The store's CPU time per write (ms), everything included.
    cpu_per_write: float


def fan_out(target: Target, followers: int, writes: int) -> FanOut:
    """Paced writes with `followers` streams reading."""
    process, pipe = None, None
    if followers:
        process, pipe = store_calls.run_role(
            store_calls.follower_role, target, followers, store_calls.head_sequence(target) - 1
        )
        if pipe.recv() != "ready":
            raise RuntimeError("followers did not start")
    cpu_before = store_calls.cpu_seconds(target.pid)
    done = store_calls.paced_creates(target, writes, WRITE_INTERVAL)
    time.sleep(0.5)  # the last events reach the followers
    cpu = store_calls.cpu_seconds(target.pid) - cpu_before
    latencies = [(acknowledged - begin) * 1000 for _, begin, acknowledged in done]
    deliveries: list[float] = []
    if process is not None and pipe is not None:
        pipe.send("stop")
        arrivals: list[dict[str, float]] = pipe.recv()
        process.join(30)
        for task_id, begin, _ in done:
            seen = [stream.get(task_id) for stream in arrivals]
            if any(arrival is None for arrival in seen):
                raise RuntimeError(f"a follower missed the event of task {task_id}")
            deliveries.append((max(arrival for arrival in seen if arrival is not None) - begin) * 1000)
    return FanOut(latencies, deliveries, 1000 * cpu / writes)


def get_task_under_writes(target: Target, rows: Seed, calls: int, unread: int) -> tuple[list[float], int, float]:
    """GetTask while another process writes; with `unread` streams opened and never read by a third.
    Returns the samples, how many streams the store kept open, and the store's CPU share (of one
    core) while GetTask was measured."""
    writer, writer_pipe = store_calls.run_role(store_calls.writer_role, target, WRITE_INTERVAL)
    writer_pipe.recv()
    holder, holder_pipe, kept = None, None, 0
    if unread:
        holder, holder_pipe = store_calls.run_role(store_calls.unread_role, target, unread)
        kept = holder_pipe.recv()
        time.sleep(2)  # the unread streams' buffers fill while tasks are written
    with grpc.insecure_channel(target.address) as channel:
        call = bound_call(channel, target, rows, "GetTask")
        timed(call, WARM_UP)
        cpu_before, begin = store_calls.cpu_seconds(target.pid), time.monotonic()
        samples = timed(call, calls)
        share = (store_calls.cpu_seconds(target.pid) - cpu_before) / (time.monotonic() - begin)
    for pipe in (holder_pipe, writer_pipe):
        if pipe is not None:
            pipe.send("stop")
    writer_pipe.recv()
    for process in (holder, writer):
        if process is not None:
            process.join(30)
    return samples, kept, share


def print_calls(title: str, samples: dict[str, list[float]], extra: dict[str, str]) -> None:
    print(title)
    baseline = statistics.median(samples[BASELINE])
    for name, values in samples.items():
        print(_row(name, values, baseline, extra[name]))


def _print_fan_out(results: dict[int, FanOut]) -> None:
    print(f"WatchEvents fan-out: CreateTask every {WRITE_INTERVAL * 1000:.0f} ms, each follower on its own connection")
    alone = statistics.median(results[0].writes)
    for followers, result in results.items():
        cpu = f"  store CPU {result.cpu_per_write:5.2f} ms/write"
        print(_row(f"write, {followers} followers", result.writes, alone, cpu))
        if result.deliveries:
            print(
                f"  {'  to the last of ' + str(followers):<30} p50 {statistics.median(result.deliveries):7.3f} ms  "
                f"p99 {_p99(result.deliveries):7.3f} ms  (from the write's request)"
            )


def _chosen_calls(args: argparse.Namespace) -> list[str]:
    """Health/Check (the baseline) and the calls `--only` names (all when it is not given)."""
    if not args.only:
        return list(CALLS)
    return [BASELINE] + [name for name in CALLS if name != BASELINE and name.split()[0] in args.only.split(",")]


def _one_client_part(target: Target, rows: Seed, args: argparse.Namespace) -> None:
    single, cpu = one_client(target, rows, args.calls, _chosen_calls(args))
    cpu_shown = {name: f"  store CPU {ms:5.3f} ms/call" for name, ms in cpu.items()}
    print_calls(f"One client, {args.calls} calls each; ratio: p50 against Health/Check", single, cpu_shown)


def _concurrent_part(target: Target, rows: Seed, args: argparse.Namespace) -> None:
    many = concurrent_clients(target, rows, args.calls, args.clients, _chosen_calls(args))
    title = f"{args.clients} concurrent clients, {args.calls} calls each; ratio: p50 against Health/Check"
    rates = {name: f"  {rate:7.0f} calls/s" for name, (_, rate) in many.items()}
    print_calls(title, {name: samples for name, (samples, _) in many.items()}, rates)


def _floor_part(_target: Target, _rows: Seed, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        process, target, rows = start_floor(Path(directory))
        try:
            samples, cpu = one_client(target, rows, args.calls, FLOOR_CALLS)
        finally:
            process.kill()
    cpu_shown = {name: f"  CPU {ms:5.3f} ms/call" for name, ms in cpu.items()}
    print_calls("The floor (bench/store_floor.py): a bare grpc.aio server on raw sqlite3", samples, cpu_shown)


def _fan_out_part(target: Target, _rows: Seed, args: argparse.Namespace) -> None:
    """The three settings take turns, ROUNDS times, so that a drift of the machine's speed (it is
    shared, and drifts within seconds) touches each alike."""
    results = {followers: FanOut([], [], 0.0) for followers in (0, 1, args.followers)}
    for _ in range(ROUNDS):
        for followers, result in results.items():
            part = fan_out(target, followers, args.writes // ROUNDS)
            result.writes.extend(part.writes)
            result.deliveries.extend(part.deliveries)
            result.cpu_per_write += part.cpu_per_write / ROUNDS
    _print_fan_out(results)


def _unread_part(target: Target, rows: Seed, args: argparse.Namespace) -> None:
    quiet, _, quiet_cpu = get_task_under_writes(target, rows, args.calls, 0)
    crowded, kept, crowded_cpu = get_task_under_writes(target, rows, args.calls, args.unread)
    print(f"GetTask while a task is written every {WRITE_INTERVAL * 1000:.0f} ms; ratios against no open stream")
    base = statistics.median(quiet)
    print(_row("no stream", quiet, base) + f"  p99 1.00x  store CPU {quiet_cpu:4.0%}")
    p99 = f"  p99 {_p99(crowded) / _p99(quiet):4.2f}x  store CPU {crowded_cpu:4.0%}"
    print(_row(f"{kept} of {args.unread} unread streams", crowded, base) + p99)


PARTS: dict[str, Callable[[Target, Seed, argparse.Namespace], None]] = {
    "calls": _one_client_part,
    "concurrent": _concurrent_part,
    "floor": _floor_part,
    "fan-out": _fan_out_part,
    "unread": _unread_part,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind per part")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--unread", type=int, default=200)
    parser.add_argument("--writes", type=int, default=1000, help="paced writes per fan-out measurement")
    parser.add_argument("--profile", type=Path, default=None, help="sample the store with py-spy into DIR")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--only", default="", help="calls and concurrent parts: these calls (GetTask,CreateTask,...)")
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL instead of SQLite")
    args = parser.parse_args()
    parts = args.parts.split(",")
    with (
        tempfile.TemporaryDirectory() as directory,
        database(Path(directory), args.postgres) as db,
        store_process(Path(directory), db) as (service, target),
    ):
        rows = store_calls.seed(target)
        for part in parts:
            with sampled(service.process.pid, args.profile, part):
                PARTS[part](target, rows, args)


if __name__ == "__main__":
    main()
