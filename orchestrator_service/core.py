"""The orchestrator: a cache fed by the store's event log, and one controller per kind of object.

```
 store events --> Feed --> Cache --(changes)--> controllers: agents | tasks | merges
                                                              phases | initiatives | projects
                                                              conversations | replies
                                                              takeovers
 a run's start and end --> the table of run kinds (runs/table.py)
 store leases --> Membership --(peers)--------> takeovers | merges
```

Every change to a cached row (read from the store, or answered by the store to our own write)
is routed to the controllers, each of which queues the keys it cares about. A controller's
handler first waits until the feed has applied the log up to our newest answered write
(cache/freshness.py), then decides from the cache alone (pure decisions in dispatch.py and
outcomes.py) and writes with preconditions; a stale cache costs a retry, never a wrong state, and
the store refuses any write that would move work early (a phase to review, a task started, an
initiative done: store_service/rules/progress.py), which is decided again.

Several orchestrators may share one store (README, "Running on several machines"): each holds its
lease `orchestrator/<name>` (cluster/membership.py), runs and settles only its own agents, and takes
over the running agents of one whose lease lapsed (controllers/takeovers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from orchestrator_service.agents import supervisor
from orchestrator_service.cache.feed import Feed
from orchestrator_service.cache.state import Cache
from orchestrator_service.cluster.membership import Membership
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.controllers.agent_runs.launches import Launches
from orchestrator_service.controllers.agent_runs.output import OutputShipper
from orchestrator_service.controllers.agent_runs.run_inputs import RunInputs
from orchestrator_service.controllers.agents import AgentController
from orchestrator_service.controllers.context import Context, Settings
from orchestrator_service.controllers.initiatives import InitiativeController
from orchestrator_service.controllers.merges import MergeController
from orchestrator_service.controllers.phases import PhaseController
from orchestrator_service.controllers.projects import ProjectController
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.controllers.takeovers import TakeoverController
from orchestrator_service.controllers.tasks import DISPATCH_KEY, TaskController
from orchestrator_service.conversations.controller import ConversationController
from orchestrator_service.conversations.person import Replies, ReplyController
from orchestrator_service.dispatch import Backoff
from orchestrator_service.planning.runs import Planning
from orchestrator_service.review.delivery import Delivery
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.review.repair import Repair
from orchestrator_service.runs import table
from orchestrator_service.runs.steps import Tools
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer

log = logging.getLogger("cw.orchestrator")

# Threads for git, files and process starts (asyncio.to_thread). Python's default (cores + 4) let a
# few starts waiting on one repository's lock hold up every other start's file work and spawn,
# and the many short waits on git processes need no core each.
IO_THREADS = 32


class Orchestrator:
    def __init__(self, store: StoreClient, root: Path, settings: Settings) -> None:
        self.store = store
        self.cache = Cache()
        self.writer = Writer(store, self.cache)
        self.feed = Feed(store, self.cache, self.writer)
        self.ctx = Context(
            store, self.cache, self.writer, root, settings, OutputShipper(store, root, settings.max_output_bytes)
        )
        self.agents = AgentController(self.ctx)
        self.projects = ProjectController(self.ctx)
        self.launches = Launches(self.ctx, self.agents, self.projects)
        self.tasks = TaskController(self.ctx, self.launches)
        # Review and repair: one phase merger for the RPCs, the merges controller and review runs.
        self.merger = PhaseMerger(self.ctx)
        self.merges = MergeController(self.ctx, Repair(self.ctx, self.merger))
        self.delivery = Delivery(self.ctx, self.projects)
        self.phases = PhaseController(self.ctx, self.projects)
        self.initiatives = InitiativeController(self.ctx)
        self.planning = Planning(self.ctx)
        # The person's replies to agents' messages: in runs' prompts, and resuming who waits for them.
        replies = Replies(self.ctx)
        self.replies = ReplyController(self.ctx, self.launches, replies)
        # How each kind of run starts and ends (runs/table.py): given to the launches and the agents
        # controller here, and nowhere else.
        tools = Tools(self.ctx, self.agents, self.launches, RunInputs(self.ctx), replies)
        self.runs = table.build(tools, self.planning, self.merger)
        self.launches.inputs = self.runs
        self.agents.kinds = self.runs
        self.conversations = ConversationController(self.ctx, self.launches, self.runs.answer.inputs)
        self.takeovers = TakeoverController(self.ctx, self.agents)
        fence = supervisor.fence_file(root)
        self.membership = Membership(self.ctx.leases, self.writer, settings.name, settings.lease_ttl, fence)
        self.membership.listeners += [self._peers, self.takeovers.on_peers, self.merges.on_peers]
        self.membership.fence_listeners.append(self._fenced)
        controllers = (
            self.agents,
            self.tasks,
            self.merges,
            self.projects,
            self.phases,
            self.initiatives,
            self.conversations,
            self.replies,
            self.takeovers,
        )
        self.cache.listeners += [controller.on_change for controller in controllers]
        for queue in self.queues():
            queue.gate = self.cache.freshness.reached  # no decision on a cache behind our own writes
        self._background: list[asyncio.Task[None]] = []

    def queues(self) -> list[WorkQueue]:
        return [
            self.agents.queue,
            *self.tasks.queues(),
            self.merges.queue,
            self.projects.queue,
            self.phases.queue,
            self.initiatives.queue,
            self.conversations.queue,
            self.replies.queue,
            self.takeovers.queue,
        ]

    async def start(self) -> None:
        """Lists live work and takes this orchestrator's lease (waiting for the store as long as it
        takes), ends what is left here of runs that are no longer its own, then runs the
        controllers and follows the log. Whatever is wrong with one object, start-up goes on: that
        object's key fails on its own back-off. Raises NameTaken when another live orchestrator
        runs under this one's name."""
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="cw-io")
        )
        await _until_reachable(self.feed.load)
        await _until_reachable(self.membership.join)
        await asyncio.to_thread(self.agents.stops.sweep)
        for queue in self.queues():
            queue.start()
        self._background += [
            asyncio.create_task(self.feed.follow(), name="feed"),
            asyncio.create_task(self.feed.resync_forever(), name="resync"),
            asyncio.create_task(self.agents.watch_forever(), name="watch-agents"),
            asyncio.create_task(self.membership.run_forever(), name="membership"),
            asyncio.create_task(self.membership.guard_forever(), name="lease-guard"),
        ]

    def _peers(self, peers: Peers) -> None:
        """Which orchestrators live, as their leases said: read by the controllers' decisions."""
        self.ctx.peers = peers

    def _fenced(self, fenced: bool) -> None:
        """Our lease may be lapsing: our agents' processes end and no run starts; once renewed,
        the dispatcher looks again."""
        self.ctx.fenced = fenced
        if fenced:
            self.agents.stops.fence()
        else:
            self.tasks.dispatch_queue.add(DISPATCH_KEY)

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in self.queues():
            await queue.stop()
        await self.ctx.locks.close()


async def _until_reachable(step: Callable[[], Awaitable[None]]) -> None:
    backoff = Backoff()
    while True:
        try:
            await step()
            return
        except grpc.aio.AioRpcError as error:
            delay = backoff.next_delay()
            log.warning("store not reachable (%s); retrying in %.1fs", error.code().name, delay)
            await asyncio.sleep(delay)
