"""The deciding controllers (phases, tasks, initiatives, merges) wired as core.py wires them, in
one process against the in-memory store (tests/fakes/store.py): no server, no git, no agent
process. What is replaced, and only that:

- git: a phase's branches (`prepare_branches`) and a task's merge (`_merge_project` finds nothing to
  merge, so the merge is the stored fact `merge_time`, written by the real Repair);
- merge leases: in-process locks only (one orchestrator);
- a run's start: the real choice of its provider (launches.choose_provider), the store's
  GetNextAvailableAccount read from the cache (which may lag: the store's rule on an account's cap
  refuses what it gets wrong), the real start's one transaction (the task IN_PROGRESS and its
  RUNNING agent, both guarded), and no process; the run ends when the test says (`finish`),
  settled by the real policy (outcomes.settle) and written by the real AgentController.write;
- the event feed: the real `Feed.apply` for each event, delivered in sequence order with pauses
  the test chooses (`FakeFeed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service import dispatch, outcomes
from orchestrator_service.agents.providers import Provider
from orchestrator_service.cache.feed import Feed
from orchestrator_service.cache.state import Cache, RowKind
from orchestrator_service.cluster.leases import MergeLocks
from orchestrator_service.controllers.agent_runs import launches, provider_choice
from orchestrator_service.controllers.agent_runs.output import OutputShipper
from orchestrator_service.controllers.agent_runs.workdirs import CannotStartYet
from orchestrator_service.controllers.agents import AgentController
from orchestrator_service.controllers.context import Context, Settings
from orchestrator_service.controllers.initiatives import InitiativeController
from orchestrator_service.controllers.merges import MergeController
from orchestrator_service.controllers.phases import PhaseController
from orchestrator_service.controllers.projects import ProjectController
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.controllers.tasks import TaskController
from orchestrator_service.events import event
from orchestrator_service.git.workspace import MergeResult
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.review.repair import Repair
from orchestrator_service.writes import Stale, Writer, update
from tests.fakes.store import FakeStore, Pause, as_store_client

ORCHESTRATOR = "in-process"


class NoGitPhases(PhaseController):
    async def prepare_branches(
        self, phase: phase_pb2.Phase, initiative: initiative_pb2.Initiative, projects: list[project_pb2.Project]
    ) -> None:
        return None


class NoGitMerges(MergeController):
    async def _merge_project(
        self, task: task_pb2.Task, initiative: initiative_pb2.Initiative, project: project_pb2.Project
    ) -> MergeResult | None:
        return None  # nothing to merge in git: the merge is the stored fact alone


class LocalLocks(MergeLocks):
    """One orchestrator: the in-process lock of each target, no lease."""

    def __init__(self) -> None:
        self._local: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, *target_ids: str, wait: float = 0.0, linger: float = 0.0) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for target_id in target_ids:
                await stack.enter_async_context(self._local.setdefault(target_id, asyncio.Lock()))
            yield


async def _no_pause() -> None:
    return None


class FakeLaunches:
    """A start as launches.py records it (one guarded transaction), with no process."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._names = itertools.count(1)
        # Awaited between the account's choice and the start's write (the test's moment for
        # another orchestrator's write: the real start prepares git there).
        self.before_write: Pause = _no_pause

    async def start(self, task: task_pb2.Task) -> agent_pb2.Agent | None:
        cache = self.ctx.cache
        initiative = cache.initiatives.get(cache.initiative_id_of(task))
        choice = launches.choose_provider(self.ctx, task, initiative)
        agent = agent_pb2.Agent(
            name=f"agent-{next(self._names)}",
            task_id=task.id,
            initiative_id=cache.initiative_id_of(task),
            session_id=f"session-{task.id}",
            worktree_id="(starting)",
            provider=choice.provider,
            account_id=self._account(choice.provider),
            status=agent_pb2.AGENT_STATUS_RUNNING,
            mode=agent_pb2.AGENT_MODE_EXECUTE,
            orchestrator=self.ctx.settings.name,
        )
        note = choice.note() or None
        started = update(task, status=task_pb2.TASK_STATUS_IN_PROGRESS, reason=note, next_attempt_time=None)
        await self.before_write()
        try:
            answer = await self.ctx.writer.append(
                [event("task:dispatched", task, agent_name=agent.name)],
                [started, agent_pb2.CreateAgentRequest(agent=agent)],
            )
        except Stale:
            return None
        return answer.rows[1].agent

    def _account(self, provider: str) -> str:
        """GetNextAvailableAccount as the cache sees the accounts: one of the provider's neither
        resting nor at its cap ("" when the provider has none); CannotStartYet when all are."""
        cache, now = self.ctx.cache, self.ctx.clock()
        own = [account for account in cache.accounts.values() if account.provider == provider]
        if not own:
            return ""
        for account in sorted(own, key=lambda account: account.id):
            live = provider_choice.live_on(account.id, cache.agents.values())
            if not provider_choice.rests(account, now) and provider_choice.at_cap(account, live) is None:
                return account.id
        raise CannotStartYet(f"waiting for a free account of provider {provider!r}")


@dataclass
class FakeFeed:
    """Delivers the store's log to the cache in sequence order, through the real Feed.apply, with
    `pause` awaited before each event (the test's delay)."""

    store: FakeStore
    feed: Feed
    pause: Pause = _no_pause
    _task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return len(self.store.events) - self.feed.cursor

    async def deliver(self, count: int) -> None:
        for stored in self.store.events[self.feed.cursor : self.feed.cursor + count]:
            await self.feed.apply(stored)
            self.feed.cursor = stored.sequence
            self.feed.cache.freshness.applied_up_to(stored.sequence)

    async def follow(self, wake: asyncio.Event) -> None:
        while True:
            if self.backlog:
                await self.pause()
                await self.deliver(1)
            else:
                wake.clear()
                await wake.wait()

    def start(self) -> None:
        wake = asyncio.Event()
        self.store.on_commit.append(wake.set)
        self._task = asyncio.create_task(self.follow(wake), name="fake-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class StepClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 12, 7, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class InProcess:
    """The controllers, their cache and feed over one FakeStore. `gate=False` leaves the queues
    without the freshness gate (only to show a test can fail; never committed so)."""

    def __init__(
        self,
        root: Path,
        store: FakeStore,
        gate: bool = True,
        retry_delays: tuple[float, ...] = (0.0, 0.0, 0.0),
        clock: Callable[[], datetime] | None = None,
        *,
        providers: tuple[str, ...] = ("scripted",),
    ) -> None:
        """`clock` is a step clock unless given (a real one, for the retry pauses' timers);
        `providers` the names this orchestrator runs, the first its default."""
        self.store = store
        self.cache = Cache()
        self.writer = Writer(store, self.cache)
        known = {name: Provider(name, ("true",)) for name in providers}
        default = providers[0]
        settings = Settings(providers=known, default_provider=default, name=ORCHESTRATOR, retry_delays=retry_delays)
        client = as_store_client(store)
        self.ctx = Context(
            client, self.cache, self.writer, root, settings, OutputShipper(client, root), clock=clock or StepClock()
        )
        self.ctx.locks = LocalLocks()
        self.feed = FakeFeed(store, Feed(client, self.cache, self.writer))
        self.agents = AgentController(self.ctx)  # its `write` settles runs; it watches no process here
        self.phases = NoGitPhases(self.ctx, ProjectController(self.ctx))
        self.launches = FakeLaunches(self.ctx)
        self.tasks = TaskController(self.ctx, self.launches)
        self.initiatives = InitiativeController(self.ctx)
        self.merges = NoGitMerges(self.ctx, Repair(self.ctx, PhaseMerger(self.ctx)))
        controllers = (self.tasks, self.merges, self.phases, self.initiatives)
        self.cache.listeners += [controller.on_change for controller in controllers]
        for queue in self.queues():
            queue.gate = self.cache.freshness.reached if gate else None

    def queues(self) -> list[WorkQueue]:
        return [*self.tasks.queues(), self.merges.queue, self.phases.queue, self.initiatives.queue]

    async def __aenter__(self) -> InProcess:
        for queue in self.queues():
            queue.start()
        self.feed.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.feed.stop()
        for queue in self.queues():
            await queue.stop()

    # ---- what a person does through the orchestrator ---------------------------------------------

    async def approve(self, phase_id: str) -> None:
        """ApprovePhase (api/operations.py): the stored phase, moved with its precondition."""
        phase = await self.store.get("phase", phase_id)
        await self.writer.append([], [update(phase, status=phase_pb2.PHASE_STATUS_APPROVED)])

    async def merge_phase(self, phase_id: str) -> bool:
        """MergePhase's store write (review/phase_merge.py, without its git): False when refused."""
        phase = await self.store.get("phase", phase_id)
        if phase.status != phase_pb2.PHASE_STATUS_PENDING_REVIEW:
            return False
        try:
            await self.writer.append(
                [event("phase:merged", phase)], [update(phase, status=phase_pb2.PHASE_STATUS_COMPLETED)]
            )
        except Stale:
            return False
        return True

    # ---- runs ------------------------------------------------------------------------------------

    def running(self) -> list[agent_pb2.Agent]:
        """The runs the orchestrator knows of (its cache): those whose end it would notice."""
        return self.ctx.my_running()

    async def finish(self, agent_id: str, kind: dispatch.OutcomeKind = dispatch.OutcomeKind.DONE) -> bool:
        """The run ended (`done`, or `crash`) and is settled as the agents controller does; False
        when its precondition failed (settled again later, as the controller would)."""
        agent = self.cache.agents.get(agent_id)
        if agent is None or agent.status != agent_pb2.AGENT_STATUS_RUNNING:
            return False
        task = self.cache.tasks.get(agent.task_id) or await self.writer.reread(RowKind.TASK, agent.task_id)
        outcome = dispatch.AgentOutcome(
            kind, summary=f"{kind} by the test", exit_code=0 if kind == dispatch.OutcomeKind.DONE else 1
        )
        settlement = outcomes.settle(agent, task, outcome, self.ctx.clock(), delays=self.ctx.settings.retry_delays)
        try:
            await self.agents.write(agent, task, settlement)
        except Stale:
            return False
        return True

    # ---- waiting -----------------------------------------------------------------------------------

    async def settled(self, timeout: float = 5.0) -> None:
        """Until the feed has delivered every event and no queue has work (a condition, with a
        deadline: the queues' own back-off and delays are real time)."""
        deadline = time.monotonic() + timeout
        while True:
            written = len(self.store.events)
            await asyncio.wait_for(self._drained(), max(deadline - time.monotonic(), 0.001))
            if self.feed.backlog == 0 and len(self.store.events) == written:
                await asyncio.sleep(0)
                if self.feed.backlog == 0 and len(self.store.events) == written and self._idle():
                    return

    async def _drained(self) -> None:
        while self.feed.backlog:
            await asyncio.sleep(0)
        for queue in self.queues():
            await queue.drained()

    def _idle(self) -> bool:
        return all(queue.idle() for queue in self.queues())
