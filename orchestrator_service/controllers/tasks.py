"""The tasks controller: recovery of orphaned tasks, the dispatcher, and starting runs.

Three queues, so nothing waits on anything it does not need:
- `tasks`, one key per task: a task IN_PROGRESS with no live agent is a crashed attempt.
- `dispatch`, a single key: which ready tasks start now, in priority order, within the capacity.
- `starts`, one key per task being started: git, account, agent row, process. A start that fails
  retries on its own back-off, its reason stored on the task, and never delays another start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from cw.store.v1 import phase_pb2, task_pb2
from orchestrator_service import dispatch, outcomes
from orchestrator_service.cache.state import Change, RowKind
from orchestrator_service.cluster import policy
from orchestrator_service.controllers.agent_runs.workdirs import CannotStartYet
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.events import event
from orchestrator_service.paths import redact
from orchestrator_service.ports import RunStarter
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")

DISPATCH_KEY = "*"
# How soon a task that could not start (no free account, a missing program) is looked at again.
WAIT_RECHECK_SECONDS = 5.0
# How long an orphan's check waits for the rest of a transaction half applied before it reads.
NEXT_EVENTS_SECONDS = 0.5
RUNNING_PHASES = (phase_pb2.PHASE_STATUS_IN_PROGRESS, phase_pb2.PHASE_STATUS_BLOCKED)
# Starts under way at once, however many agents may run: a start is CPU (git, the shim, the
# sandbox) and two store writes, so more at once only queue there; 200 at once made the store's
# answers miss their deadlines (bench/many_agents.py), failing starts whose processes ran.
STARTS_AT_ONCE = 16


# What makes a task look orphaned (`_looks_orphaned`) of its agents: one leaving the cache (its
# status) or moving to another task. Usage and output counters of a running agent change neither.
ORPHANING_AGENT_FIELDS = ("status", "task_id")


class TaskController:
    def __init__(self, ctx: Context, launches: RunStarter) -> None:
        self.ctx = ctx
        self.launches = launches
        self.queue = WorkQueue("tasks", self.recover, concurrency=4)
        self.dispatch_queue = WorkQueue("dispatch", self.dispatch, concurrency=1)
        concurrency = min(ctx.settings.max_agents, STARTS_AT_ONCE)
        self.starts = WorkQueue("starts", self.start, concurrency=concurrency, on_error=self.start_failed)
        self.starting: set[str] = set()

    def queues(self) -> list[WorkQueue]:
        return [self.queue, self.dispatch_queue, self.starts]

    def on_change(self, change: Change) -> None:
        if change.kind == RowKind.TASK:
            self.queue.add(change.id, reset=change.external)
        elif (
            change.kind == RowKind.AGENT
            and change.before is not None
            and change.before.task_id
            and change.touches(*ORPHANING_AGENT_FIELDS)
        ):
            self.queue.add(change.before.task_id)
        if change.kind in (RowKind.TASK, RowKind.AGENT, RowKind.PHASE, RowKind.ACCOUNT, RowKind.INITIATIVE):
            self.dispatch_queue.add(DISPATCH_KEY)

    # ---- orphans: a task in progress without a live agent ---------------------------------------

    async def recover(self, task_id: str) -> None:
        if not self._looks_orphaned(task_id):
            return
        # The cache may hold half of another orchestrator's transaction: a start (the task IN_PROGRESS,
        # its agent not applied yet) or a settlement (the agent stopped, the task not COMPLETED yet).
        # The log as far as the store has it now holds the rest: once it is applied, what still
        # looks orphaned is (a read of the live agents instead found none in the second case, and
        # the orphan's write was refused, read again: four calls for nothing). The rest is the next
        # events of the log, those after the one applied last: waited for a moment first, and the
        # store's head is read only when they do not come or the task still looks orphaned.
        await self._next_events()
        if not self._looks_orphaned(task_id):
            return
        await self.ctx.cache.freshness.reached(await self.ctx.port.head_sequence())
        if not self._looks_orphaned(task_id):
            return
        task = self.ctx.cache.tasks[task_id]
        values, note = outcomes.orphaned(task, self.ctx.clock(), self.ctx.settings.retry_delays)
        try:
            await self.ctx.writer.append([event(note.type, task, **note.details)], [update(task, **values)])
        except Stale:
            return  # the re-read row is queued again if it still needs us
        log.info("task %s was in progress without a live agent: %s", task_id, note.type)

    async def _next_events(self) -> None:
        """Until the feed has applied the event after the last one applied now, or a moment has
        passed (a quiet log may have none)."""
        freshness = self.ctx.cache.freshness
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(freshness.reached(freshness.applied + 1), NEXT_EVENTS_SECONDS)

    def _looks_orphaned(self, task_id: str) -> bool:
        """IN_PROGRESS, as cached, with no live agent cached and no start of ours under way."""
        cache = self.ctx.cache
        task = cache.tasks.get(task_id)
        if task is None or task.status != task_pb2.TASK_STATUS_IN_PROGRESS:
            return False
        return not cache.live_agents_of(task_id) and task_id not in self.starting

    # ---- what starts now ------------------------------------------------------------------------

    async def dispatch(self, _key: str) -> None:
        capacity = self.ctx.settings.max_agents - len(self.ctx.my_running()) - len(self.starting)
        if capacity <= 0:
            return
        failing = self.starts.failing()
        ready, wake_at = self.ready_tasks()
        if wake_at is not None:  # a retry pause ends later: look again then
            delay = (wake_at - self.ctx.clock()).total_seconds()
            self.dispatch_queue.add(DISPATCH_KEY, delay=max(delay, 0.0))
        ready = policy.spread(ready, self.ctx.peers)
        for task in [task for task in ready if task.id not in failing][:capacity]:
            self.starting.add(task.id)
            self.starts.add(task.id)

    def ready_tasks(self, busy: bool = True) -> tuple[list[task_pb2.Task], datetime | None]:
        """A query of the cache, nothing more: PENDING tasks whose dependencies are done, in a
        running phase (or queued without one), whose retry pause has passed, in dispatch order
        (unless `busy` is False, without those being started already); and when the earliest retry
        pause still running ends (None: there is none)."""
        cache = self.ctx.cache
        running_phases = {phase.id for phase in cache.phases.values() if phase.status in RUNNING_PHASES}
        queued = {task.id for task in cache.tasks.values() if not task.phase_id and task.HasField("queue_time")}
        not_due, wake_at = dispatch.retry_not_due(cache.tasks.values(), self.ctx.clock())
        candidates = [
            task
            for task in cache.tasks.values()
            if task.id not in not_due and not (busy and task.id in self.starting) and not cache.live_agents_of(task.id)
        ]
        finished = dispatch.finished_dependencies(cache.tasks, cache.depends_on)
        return dispatch.ready_tasks(candidates, cache.depends_on, running_phases, queued, finished), wake_at

    # ---- one start --------------------------------------------------------------------------------

    async def start(self, task_id: str) -> None:
        """Starts the task if it is still ready and a slot is free; the dispatcher looks again
        whatever happens."""
        self.starting.add(task_id)
        try:
            others = len(self.starting) - 1
            if len(self.ctx.my_running()) + others >= self.ctx.settings.max_agents:
                return
            task = next((ready for ready in self.ready_tasks(busy=False)[0] if ready.id == task_id), None)
            if task is None:
                return
            try:
                await self.launches.start(task)
            except CannotStartYet as waiting:
                await self.note_reason(task, str(waiting))
                self.dispatch_queue.add(DISPATCH_KEY, delay=WAIT_RECHECK_SECONDS)
        finally:
            self.starting.discard(task_id)
            self.dispatch_queue.add(DISPATCH_KEY)

    async def start_failed(self, task_id: str, error: Exception) -> None:
        task = self.ctx.cache.tasks.get(task_id)
        if task is not None and task.status == task_pb2.TASK_STATUS_PENDING:
            await self.note_reason(task, f"could not start: {redact(str(error), self.ctx.root)}")

    async def note_reason(self, task: task_pb2.Task, reason: str) -> None:
        """Why the task waits, visible to people; written only when it changes."""
        if task.reason == reason:
            return
        try:
            await self.ctx.writer.append([], [update(task, reason=reason)])
        except Stale:
            return
