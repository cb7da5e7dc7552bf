"""The web pages against the calls they are made of, as ratios in one run.

    python -m bench.web_pages [--rounds 15] [--only diff|board|live]

- the diff page of a 5,000-line diff (10 files of 500 added lines, every line rendered and
  highlighted) against GetPhaseDiff for the same phase;
- the initiative page of 500 tasks against listing those tasks (ListTasks through the SDK): shown
  again unchanged (two reads of the log say so), and right after a task was created (it is read);
- a committed change shown in an open page against the time it takes to reach a follower of the
  orchestrator's event stream (what `cw events --follow` reads): a phase approved (its status) and
  a task created on an open board. The page's side is what its script does: the event arrives over
  the page's server-sent events; a status is shown from the event itself, a created task from the
  row its board's stream sends with the event (`rows=tasks`: one GetTask, clients/web/live.py);
  for comparison, the old way too: the event, then the board read again.

Both services and the web server run as processes, on loopback; medians of --rounds samples.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from clients.sdk import OrchestratorClient, StoreClient
from cw.store.v1 import phase_pb2
from tests.e2e.cluster import SCRIPTED, Cluster, cw
from tests.web.support import web_server

FILES, LINES = 10, 500
TASKS = 500


def median_ms(action: Callable[[], object], rounds: int) -> float:
    action()  # warm-up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def big_files() -> dict[str, str]:
    body = "".join(f"def f{n}(x):  # line {n}\n" if n % 2 else f"    return x + {n}\n" for n in range(LINES))
    return {f"mod{index}.py": body for index in range(FILES)}


def log_in(c: Cluster, web: httpx.Client, address: str) -> None:
    web.get(cw(c, "web", "url", "--listen", address).stdout.strip()).raise_for_status()


def diff_page(c: Cluster, web: httpx.Client, orchestrator: OrchestratorClient, rounds: int) -> None:
    initiative = c.initiative("Big diff", c.project("big"))
    phase = c.phase(initiative, "Big")
    c.task(phase, "write", files=big_files())
    c.approve(phase)
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=300)
    rpc = median_ms(lambda: orchestrator.phase_diff(phase.id), rounds)
    page = median_ms(lambda: web.get(f"/phases/{phase.id}/diff").raise_for_status(), rounds)
    print(f"diff page, {FILES * LINES} lines: {page:.1f} ms vs GetPhaseDiff {rpc:.1f} ms = {page / rpc:.2f}x")


def initiative_page(c: Cluster, web: httpx.Client, store: StoreClient, rounds: int) -> None:
    initiative = c.initiative("Many tasks", c.project("many"))
    phase = c.phase(initiative, "Wide")
    for index in range(TASKS):
        c.task(phase, f"task {index}")
    listing = median_ms(lambda: store.list_tasks(initiative_id=initiative.id), rounds)
    page = median_ms(lambda: web.get(f"/initiatives/{initiative.id}").raise_for_status(), rounds)
    print(f"initiative page, {TASKS} tasks: {page:.1f} ms vs listing them {listing:.1f} ms = {page / listing:.2f}x")
    other = c.phase(initiative, "Changed")
    after_change = []
    for index in range(rounds):
        c.task(other, f"change {index}")  # the board changed: the new task is read (clients/web/boards.py)
        start = time.perf_counter()
        web.get(f"/initiatives/{initiative.id}").raise_for_status()
        after_change.append(time.perf_counter() - start)
    changed = statistics.median(after_change) * 1000
    print(f"  the same page right after a task was created: {changed:.1f} ms = {changed / listing:.2f}x")


def _first_event_after(stream: httpx.Response, watched: Watched, entity: str, arrived: list[float]) -> None:
    for line in stream.iter_lines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event["type"] == watched.wanted and entity in ("", event["entity_id"]):
            if watched.rows and "row" not in event:
                raise AssertionError(f"no row with {event}")  # the page could not show it from the event
            arrived.append(time.perf_counter())
            return


@dataclass
class Watched:
    """What one round changes and how an open page shows it."""

    wanted: str  # the event type that says so
    change: Callable[[int], object]
    reread: str  # "" when the page shows it from the event itself, else the page read again
    entity: Callable[[int], str] = lambda _round: ""  # the row whose event it must be ("" any)
    rows: str = ""  # the page's stream sends created tasks' rows (a board: "tasks"), shown from the event


def time_to_show(
    web: httpx.Client, clients: tuple[StoreClient, OrchestratorClient], scope: str, watched: Watched, rounds: int
) -> tuple[float, float]:
    """Medians (ms) from the write to an event follower having it, and to the open page showing it."""
    store, orchestrator = clients
    to_follower, to_page = [], []
    for index in range(rounds + 1):
        head = store.head_sequence()
        follower_saw: list[float] = []

        entity = watched.entity(index)

        def follow(after: int = head, saw: list[float] = follower_saw, entity: str = entity) -> None:
            for event in orchestrator.events(after, (watched.wanted,), scope):
                if entity in ("", event.phase_id, event.task_id):
                    saw.append(time.perf_counter())
                    return

        page_saw: list[float] = []
        url = f"/live/events?after={head}&initiative={scope}&rows={watched.rows}"
        with web.stream("GET", url, headers={"accept": "text/event-stream"}) as stream:
            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            reader = threading.Thread(target=_first_event_after, args=(stream, watched, entity, page_saw), daemon=True)
            reader.start()
            time.sleep(0.3)  # both streams open and idle before the write (not a synchronisation)
            start = time.perf_counter()
            watched.change(index)
            reader.join(30)
            if watched.reread:
                web.get(watched.reread).raise_for_status()
            shown = time.perf_counter()
            follower.join(30)
        assert follower_saw and page_saw
        if index:  # the first round warms up
            to_follower.append(follower_saw[0] - start)
            to_page.append(shown - start)
    return statistics.median(to_follower) * 1000, statistics.median(to_page) * 1000


def live_changes(c: Cluster, web: httpx.Client, clients: tuple[StoreClient, OrchestratorClient], rounds: int) -> None:
    initiative = c.initiative("Live", c.project("live"))
    board = c.phase(initiative, "Watched")
    phases = [c.phase(initiative, f"to approve {n}") for n in range(rounds + 1)]
    approve = Watched("phase:updated", lambda n: c.approve(phases[n]), "", lambda n: phases[n].id)
    created = 0

    def create(_round: int) -> object:
        nonlocal created
        created += 1
        return c.task(board, f"new {created}")

    shown_row = Watched("task:created", create, "", rows="tasks")
    reread = Watched("task:created", create, f"/initiatives/{initiative.id}")
    for what, watched in (
        ("a phase approved (its status)", approve),
        ("a task created on a board (its row sent with the event)", shown_row),
        ("  for comparison, a task created and the board read again", reread),
    ):
        follower, page = time_to_show(web, clients, initiative.id, watched, rounds)
        ratio = page / follower
        print(f"{what} shown in an open page: {page:.1f} ms vs an event follower {follower:.1f} ms = {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", choices=["diff", "board", "live"], default="", help="one of the three measures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        c = Cluster(Path(directory), [f"scripted={SCRIPTED}"])
        try:
            c.start_store()
            c.start_orchestrator()
            env = c.client_env()
            store = StoreClient(env["CW_STORE"], token_file=c.client_token_file)
            orchestrator = OrchestratorClient(env["CW_ORCHESTRATOR"], token_file=c.client_token_file)
            with web_server(c) as server, httpx.Client(base_url=server.base, follow_redirects=True, timeout=60) as web:
                log_in(c, web, server.service.address)
                if args.only in ("", "diff"):
                    diff_page(c, web, orchestrator, args.rounds)
                if args.only in ("", "board"):
                    initiative_page(c, web, store, args.rounds)
                if args.only in ("", "live"):
                    live_changes(c, web, (store, orchestrator), args.rounds)
        finally:
            c.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
