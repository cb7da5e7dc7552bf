"""The whole orchestrator (core.Orchestrator: every controller, wired as it wires them) in one process
over the in-memory store (tests/fakes/store.py). Only its edges are replaced:

- the store: the fake, its services answering the few List/Get/Sum calls (tests/fakes/services.py),
  its leases the ones the test holds;
- git: tests/fakes/git.py (clones that exist once synced, branches made in memory, checkpoints that
  commit nothing), and a task's merge the stored fact;
- a run's process: `Launches.spawn` records the launch and its pid, as the real one does, and starts
  nothing; the run ends when the test writes what its shim would (`end`: exit.json, the agent's
  report) and queues the agent, as the pidfd or the watch loop would, so the agents controller
  settles it through its real path (observe, outcome, checkpoint, settlement, write);
- the event feed: tests/fakes/orchestrator.py's FakeFeed over the real Feed.apply.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service.agents import launcher
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.shim import EXIT_FILE, IDENTITY_FILE
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.controllers.agent_runs.workdirs import Place
from orchestrator_service.controllers.context import Settings
from orchestrator_service.core import Orchestrator
from orchestrator_service.events import event
from orchestrator_service.git.workspace import MergeResult
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from tests.fakes.git import FakeGit
from tests.fakes.orchestrator import FakeFeed, LocalLocks
from tests.fakes.store import FakeStore, as_store_client

NAME = "here"
# The pid a fake run records: no process of this test's (a shim's identity naming it is no shim).
FAKE_PID = 4_194_301


@dataclass(frozen=True)
class Launched:
    """A run started (a new one, or a session resumed): what its process would have been given."""

    agent: agent_pb2.Agent
    mode: str
    prompt: str
    resume: bool
    environment: dict[str, str]
    # When it started, by the orchestrator's clock (the store's stamps here are the fake's own).
    at: datetime


class Whole:
    def __init__(
        self, root: Path, store: FakeStore, *, retry_delays: tuple[float, ...] = (0.0, 0.0, 0.0), **settings: Any
    ) -> None:
        self.root = root
        self.store = store
        known = {"scripted": Provider("scripted", ("true",))}
        chosen = Settings(
            providers=known, default_provider="scripted", name=NAME, retry_delays=retry_delays, **settings
        )
        self.orchestrator = Orchestrator(as_store_client(store), root, chosen)
        ctx = self.ctx = self.orchestrator.ctx
        self.git = FakeGit(root)
        ctx.git = self.git
        ctx.locks = LocalLocks()
        ctx.leases.stub = cast(Any, store.lease_service)  # the leases the test holds
        ctx.peers = Peers(NAME)
        self.orchestrator.launches.spawn = self._spawn  # type: ignore[method-assign]
        self.orchestrator.merges._merge_project = self._no_merge  # type: ignore[method-assign]
        self.feed = FakeFeed(store, self.orchestrator.feed)
        self.launched: list[Launched] = []

    async def __aenter__(self) -> Whole:
        for queue in self.orchestrator.queues():
            queue.start()
        self.feed.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.feed.stop()
        for queue in self.orchestrator.queues():
            await queue.stop()

    # ---- the edges ---------------------------------------------------------------------------------

    async def _spawn(
        self, agent: agent_pb2.Agent, launch: launcher.Launch, placing: asyncio.Task[Place] | None = None
    ) -> agent_pb2.Agent:
        """Launches.spawn without a process: its task's worktrees awaited as a start awaits them,
        then its pid recorded with `agent:spawned` (or resumed)."""
        if placing is not None:
            await placing
        at = self.ctx.clock()
        self.launched.append(Launched(agent, launch.mode, launch.prompt, launch.resume, dict(launch.environment), at))
        self.ctx.shipper.begin(agent.id)
        kind = "agent:resumed" if launch.resume else "agent:spawned"
        started = update(agent, pid=FAKE_PID, worktree_id=str(launch.files.workdir))
        started.ClearField("expected_update_time")
        answer = await self.ctx.writer.append([event(kind, agent, pid=FAKE_PID, name=agent.name)], [started])
        recorded: agent_pb2.Agent = answer.rows[0].agent
        return recorded

    async def _no_merge(
        self, task: task_pb2.Task, initiative: initiative_pb2.Initiative, project: project_pb2.Project
    ) -> MergeResult | None:
        return None  # nothing to merge in git: the merge is the stored fact alone

    # ---- what a person does ------------------------------------------------------------------------

    async def approve(self, phase_id: str) -> None:
        """ApprovePhase (api/operations.py): the stored phase, moved with its precondition."""
        phase = await self.store.get("phase", phase_id)
        await self.ctx.writer.append([], [update(phase, status=phase_pb2.PHASE_STATUS_APPROVED)])

    # ---- runs ----------------------------------------------------------------------------------------

    def running(self) -> list[agent_pb2.Agent]:
        return self.ctx.my_running()

    def end(self, agent_id: str, report: dict[str, Any] | None = None, exit_code: int = 0) -> None:
        """The run's process ended as its shim records it: its report (the signal file) and exit;
        the agent is queued for its settlement, as the shim's exit would."""
        files = AgentFiles.of(self.root, agent_id)
        files.outbox.mkdir(parents=True, exist_ok=True)
        if report is not None:
            files.signal.write_text(json.dumps(report))
        (files.control / IDENTITY_FILE).write_text(json.dumps({"pid": FAKE_PID, "start_time": 1}))
        (files.control / EXIT_FILE).write_text(json.dumps({"exit_code": exit_code, "signal": 0}))
        self.orchestrator.agents.queue.add(agent_id)

    # ---- waiting -------------------------------------------------------------------------------------

    async def settled(self, timeout: float = 5.0) -> None:
        """Until the feed has delivered every event and no queue has work (a key waiting for its
        delay counts as work: a test of a delay waits with `until`)."""
        deadline = time.monotonic() + timeout
        queues = self.orchestrator.queues()
        while True:
            written = len(self.store.events)
            while self.feed.backlog:
                await asyncio.sleep(0)
            for queue in queues:
                try:
                    await asyncio.wait_for(queue.drained(), max(deadline - time.monotonic(), 0.001))
                except TimeoutError:
                    failing = {q.name: q.failing() for q in queues if not q.idle()}
                    raise AssertionError(f"the controllers did not settle: {failing}") from None
            await asyncio.sleep(0)
            if self.feed.backlog == 0 and len(self.store.events) == written and all(q.idle() for q in queues):
                return

    async def until(self, what: str, condition: Any, timeout: float = 5.0) -> None:
        """Polls a condition of the in-memory state (for what waits on a timer: a retry's delay)."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.01)


@dataclass(frozen=True)
class OneTask:
    initiative: initiative_pb2.Initiative
    project: project_pb2.Project
    phase: phase_pb2.Phase
    task: task_pb2.Task


def one_task(store: FakeStore, name: str = "users", **task_values: Any) -> OneTask:
    """An initiative with one project and one phase (not approved yet) of one task."""
    initiative = store.create_initiative("auth")
    project = store.add_project(initiative.id, "app")
    phase = store.create_phase(initiative.id, "schema")
    task = store.create_task(phase, name)
    if task_values:
        asyncio.run(store.append([], changes(update(task, **task_values))))
        task = store.tables.rows["task"][task.id]
    return OneTask(initiative, project, phase, task)
