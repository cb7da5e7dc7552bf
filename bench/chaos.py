"""Chaos: an initiative of 3 phases runs while the orchestrator, the store or a random agent is
SIGKILLed (and restarted) at random moments. Not part of `make test`; run it as

    python -m bench.chaos [--kills 50] [--tasks-per-phase 11] [--seed N]

It drives the initiative as a person would (merges each phase in review, retries a task that ends
BLOCKED because its agent was killed four times), follows the event stream as a client that
reconnects, samples live agents, and reports, all of which must be 0: commits lost, tasks stuck,
tasks with two live agents, event gaps and duplicates seen by the follower, phases whose diff misses
a task's work.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

import grpc

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import SCRIPTED, Cluster

T = TypeVar("T")
LIVE = [agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]


def quietly(call: Callable[[], T]) -> T | None:
    """A call that may meet a service being killed: None instead of an error."""
    try:
        return call()
    except grpc.RpcError:
        return None


@dataclass
class Observations:
    sequences: list[int] = field(default_factory=list)
    double_agents: set[str] = field(default_factory=set)
    retries: int = 0
    merges: int = 0
    kills: Counter[str] = field(default_factory=Counter)


class Chaos:
    def __init__(self, root: Path, phases: int, tasks_per_phase: int, seed: int, agent_seconds: float = 2.0) -> None:
        self.agent_seconds = agent_seconds
        self.c = Cluster(root, [f"scripted={SCRIPTED}"], max_agents=4, retry_delays="0.2,0.5,1")
        self.random = random.Random(seed)
        self.seen = Observations()
        self.stop = threading.Event()
        self.phases_wanted, self.tasks_per_phase = phases, tasks_per_phase
        self.files: dict[str, set[str]] = {}

    def build(self) -> None:
        c = self.c
        c.start_store()
        c.start_orchestrator()
        self.initiative = c.initiative("Chaos", c.project())
        previous: list[str] = []
        self.phases: list[phase_pb2.Phase] = []
        for p in range(self.phases_wanted):
            phase = c.phase(self.initiative, f"phase {p}", after=previous)
            tasks: list[task_pb2.Task] = []
            for t in range(self.tasks_per_phase):
                after = [tasks[t - 3].id] if t >= 3 else []
                name = f"p{p}/t{t}.txt"
                tasks.append(
                    c.task(phase, f"t{t}", after=after, files={name: f"{p}.{t}\n"}, sleep_seconds=self.agent_seconds)
                )
                self.files.setdefault(phase.id, set()).add(name)
            self.phases.append(phase)
            previous = [phase.id]
        for phase in self.phases:
            c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)

    # ---- the person, the follower, the sampler ------------------------------------------------

    def drive(self) -> None:
        while not self.stop.is_set():
            for phase in self.phases:
                self._merge_if_in_review(phase.id)
            blocked = quietly(self._blocked_tasks)
            for task_id in blocked or []:
                self.seen.retries += quietly(functools.partial(self._retry, task_id)) is not None
            self.stop.wait(0.3)

    def _merge_if_in_review(self, phase_id: str) -> None:
        c = self.c
        current = quietly(lambda: c.get_phase(phase_id))
        if current is not None and current.status == phase_pb2.PHASE_STATUS_PENDING_REVIEW:
            merged = quietly(lambda: c.orch.MergePhase(orch.MergePhaseRequest(phase_id=phase_id), timeout=30))
            self.seen.merges += merged is not None

    def _blocked_tasks(self) -> list[str]:
        request = task_pb2.ListTasksRequest(initiative_id=self.initiative.id, status=task_pb2.TASK_STATUS_BLOCKED)
        return [task.id for task in self.c.api.tasks.ListTasks(request, timeout=10).tasks]

    def _retry(self, task_id: str) -> task_pb2.Task:
        task: task_pb2.Task = self.c.orch.RetryBlockedTask(orch.RetryBlockedTaskRequest(task_id=task_id), timeout=10)
        return task

    def follow(self) -> None:
        while not self.stop.is_set():
            after = self.seen.sequences[-1] if self.seen.sequences else 0
            try:
                request = orch.StreamEventsRequest(after_sequence=after)
                for stored in self.c.orch.StreamEvents(request, timeout=5):
                    if stored.sequence:
                        self.seen.sequences.append(stored.sequence)
                    if self.stop.is_set():
                        return
            except grpc.RpcError:
                self.stop.wait(0.2)

    def sample(self) -> None:
        while not self.stop.is_set():
            live = quietly(
                lambda: self.c.api.agents.ListAgents(
                    agent_pb2.ListAgentsRequest(statuses=LIVE, page_size=1000), timeout=5
                )
            )
            if live is not None:
                counts = Counter(agent.task_id for agent in live.agents)
                self.seen.double_agents |= {task for task, count in counts.items() if count > 1}
            self.stop.wait(0.1)

    # ---- the chaos --------------------------------------------------------------------------------

    def kill_something(self) -> None:
        c, roll = self.c, self.random.random()
        if roll < 0.4:
            assert c.orchestrator is not None
            c.orchestrator.kill()
            c.start_orchestrator()
            self.seen.kills["orchestrator"] += 1
        elif roll < 0.6:
            assert c.store is not None
            c.store.kill()
            c.start_store()
            self.seen.kills["store"] += 1
        else:
            shims = list((c.root / "workspace" / "agents").glob("*/shim.json"))
            self.random.shuffle(shims)
            for shim in shims:
                if (shim.parent / "exit.json").exists():
                    continue
                try:
                    os.killpg(int(json.loads(shim.read_text())["pid"]), signal.SIGKILL)
                except (ProcessLookupError, ValueError, KeyError, PermissionError):
                    continue
                self.seen.kills["agent"] += 1
                break

    def done(self) -> bool:
        initiative = quietly(
            lambda: self.c.api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=self.initiative.id))
        )
        return initiative is not None and initiative.status == initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW

    def run(self, kills: int, timeout: float) -> dict[str, Any]:
        self.build()
        threads = [threading.Thread(target=work, daemon=True) for work in (self.drive, self.follow, self.sample)]
        for thread in threads:
            thread.start()
        start = time.monotonic()
        while sum(self.seen.kills.values()) < kills and not self.done():
            time.sleep(self.random.uniform(0.2, 1.5))
            self.kill_something()
        while not self.done() and time.monotonic() - start < timeout:
            time.sleep(0.5)
        time.sleep(1.0)  # let the follower read the last events
        self.stop.set()
        for thread in threads:
            thread.join(10)
        return self.report(time.monotonic() - start)

    def report(self, elapsed: float) -> dict[str, Any]:
        c = self.c
        tasks = c.api.tasks.ListTasks(task_pb2.ListTasksRequest(initiative_id=self.initiative.id, page_size=1000)).tasks
        stuck = [task.name for task in tasks if task.status != task_pb2.TASK_STATUS_COMPLETED]
        repo = next((c.root / "workspace" / "repos").iterdir())
        listed = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", self.initiative.branch],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        wanted = set().union(*self.files.values())
        missing_in_diff = 0
        for phase in self.phases:
            diff = c.orch.GetPhaseDiff(orch.GetPhaseDiffRequest(phase_id=phase.id), timeout=30)
            shown = {f.path for project in diff.projects for f in project.files}
            missing_in_diff += not self.files[phase.id] <= shown
        every = [e.sequence for e in c.events()]
        received = self.seen.sequences
        last = received[-1] if received else 0
        return {
            "seconds": round(elapsed, 1),
            "kills": dict(self.seen.kills),
            "tasks": len(tasks),
            "commits lost": len(wanted - set(listed)),
            "tasks stuck": len(stuck),
            "tasks with two live agents": len(self.seen.double_agents),
            "event gaps for the follower": len({s for s in every if s <= last} - set(received)),
            "event duplicates for the follower": len(received) - len(set(received)),
            "phases whose diff misses a task's work": missing_in_diff,
            "manual retries of BLOCKED tasks": self.seen.retries,
            "phases merged": self.seen.merges,
        }

    def close(self) -> None:
        self.c.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--phases", type=int, default=3)
    parser.add_argument("--tasks-per-phase", type=int, default=11)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--agent-seconds", type=float, default=4.0, help="how long each agent works")
    args = parser.parse_args()
    with TemporaryDirectory() as directory:
        chaos = Chaos(Path(directory), args.phases, args.tasks_per_phase, args.seed, args.agent_seconds)
        try:
            result = chaos.run(args.kills, args.timeout)
        finally:
            chaos.close()
    print(json.dumps({"seed": args.seed, **result}, indent=2))


if __name__ == "__main__":
    main()
