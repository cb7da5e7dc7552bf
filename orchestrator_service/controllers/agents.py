"""The agents controller: notices runs that ended, ships their output, and settles them.

A shim this process started is watched through a pidfd: its exit queues the agent's settlement at
once (a run's slot is free again as soon as it is settled, not at the next look). A watch loop
also looks at every running agent a few times a second (no store call) and queues the ones that
ended: a run this process did not start (before a restart, taken over), or a shim whose exit the
pidfd missed. A shim that is our live child and was seen running as itself costs that loop one
`waitpid`, not a look at its files; its output is read again only once its file has grown.
Settling one is a key of its own, so a slow or failing settlement never holds up another. Once
its output is shipped and its work checkpointed and published, the run is settled by its kind
(`RunSettler`: the table of run kinds, orchestrator_service/runs/, wired by core.py), decided by
pure policy (orchestrator_service/outcomes.py) and written here (`write`) with preconditions: if
a person stopped the agent meanwhile, the write answers ABORTED and the settlement is decided again
from what is stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import grpc
from google.protobuf import field_mask_pb2

from cw.store.v1 import account_pb2, agent_pb2, task_pb2
from orchestrator_service import dispatch, leftovers, outcomes
from orchestrator_service.agents import claude_outcome, launcher, pids_cgroup, supervisor
from orchestrator_service.agents.supervisor import AgentFiles, Liveness
from orchestrator_service.cache.state import LIVE_AGENT, AgentChange, Change, RowKind
from orchestrator_service.cluster import policy
from orchestrator_service.controllers.agent_runs.checkpointing import Checkpointer
from orchestrator_service.controllers.agent_runs.stops import Stops, fetch_back, task_of
from orchestrator_service.controllers.agent_runs.usage import UsageMeter
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.events import event
from orchestrator_service.git import shared
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.writes import Stale, timestamp, update

log = logging.getLogger("cw.orchestrator")

WATCH_SECONDS = 0.2
SHIP_SECONDS = 1.0


@dataclass(frozen=True)
class RunEnd:
    """A run that ended, for its kind to settle (runs/table.py): its agent and task as read, how it
    ended, the notes it ends with (a take-over's), and what it left in its worktree with the label
    of its end (leftovers.py), when its checkpoint was made."""

    agent: agent_pb2.Agent
    task: task_pb2.Task | None
    outcome: dispatch.AgentOutcome
    notes: tuple[outcomes.Note, ...] = ()
    left: tuple[leftovers.Left, str] | None = None


class RunSettler(Protocol):
    """Settles a run as its kind says (the table of run kinds, runs/table.py, wired in core.py)."""

    async def settle(self, end: RunEnd) -> bool:
        """Writes the run's settlement; False when it is not over (a new CLI session took it on)."""


class _Unwired:
    async def settle(self, end: RunEnd) -> bool:
        raise RuntimeError("no table of run kinds wired (core.py wires runs/table.py)")


class AgentController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue = WorkQueue("agents", self.settle, concurrency=8)
        # How each kind of run is settled: the table of run kinds (runs/table.py), wired by core.py.
        self.kinds: RunSettler = _Unwired()
        self.checkpointer = Checkpointer(ctx)
        self.stops = Stops(ctx, self.checkpointer)
        self.usage = UsageMeter(ctx)
        self.stops.after_end.append(lambda agent: self.usage.record(agent, final=True))
        # Agents whose shim, our live child, was seen running as itself (`supervisor.observe`): the
        # child it was seen as. While that child runs, the run does (its pid cannot be reused
        # before we reap it).
        self._seen_running: dict[str, subprocess.Popen[bytes]] = {}
        # The size of each running agent's output file when it was last shipped and metered.
        self._shipped_sizes: dict[str, int] = {}

    def child_started(self, agent_id: str, child: subprocess.Popen[bytes]) -> None:
        """A shim this process just started for the agent: reaped, and its run settled, as soon as
        it exits (a pidfd on the event loop; where there is none, the watch loop sees it)."""
        self.ctx.children[agent_id] = child
        try:
            descriptor = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            return
        loop = asyncio.get_running_loop()
        loop.add_reader(descriptor, self._child_exited, agent_id, child, descriptor)

    def _child_exited(self, agent_id: str, child: subprocess.Popen[bytes], descriptor: int) -> None:
        asyncio.get_running_loop().remove_reader(descriptor)
        os.close(descriptor)
        child.poll()
        if self.ctx.children.get(agent_id) is child:
            del self.ctx.children[agent_id]
        self.queue.add(agent_id)

    def on_change(self, change: Change) -> None:
        if change.kind != RowKind.AGENT:
            return
        after = change.after
        if after is not None and after.status == agent_pb2.AGENT_STATUS_RUNNING and self.ctx.mine(after):
            self.queue.add(change.id, reset=change.external)
        if change.before is not None and self._no_longer_ours(change):
            self.stops.end_leftover(change.before)

    def _no_longer_ours(self, change: AgentChange) -> bool:
        """Someone else ended or took a run of ours (its process may still work here)."""
        before, after = change.before, change.after
        if not change.external or before is None or before.status not in LIVE_AGENT or not self.ctx.mine(before):
            return False
        return after is None or after.status not in LIVE_AGENT or not self.ctx.mine(after)

    # ---- watching -------------------------------------------------------------------------------

    async def watch_forever(self) -> None:
        last_ship = 0.0
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self._reap_children()
            running = self.ctx.my_running()
            ended = await asyncio.to_thread(self._ended, running)
            for agent_id in ended:
                self.queue.add(agent_id)
            if time.monotonic() - last_ship >= SHIP_SECONDS:
                last_ship = time.monotonic()
                # A run that ended is shipped whole by its settlement; shipped here too, after the
                # settlement forgot it, it looked the store's chunks up again (ListLogChunks).
                await self._ship_grown([agent for agent in running if agent.id not in ended])

    async def _ship_grown(self, running: list[agent_pb2.Agent]) -> None:
        """Ships and meters the output of the running agents whose output file grew since it was
        last shipped and metered (one look at every file's size; nothing more for the others)."""
        sizes = await asyncio.to_thread(self._output_sizes, running)
        for gone in self._shipped_sizes.keys() - sizes.keys():
            del self._shipped_sizes[gone]
        for agent in running:
            size = sizes.get(agent.id)
            if size is not None and self._shipped_sizes.get(agent.id) == size:
                continue
            shipped = True
            try:
                await self.ctx.shipper.ship(agent, final=False)
            except grpc.aio.AioRpcError:
                shipped = False
            if await self._meter_safely(agent) and shipped and size is not None:
                self._shipped_sizes[agent.id] = size
            else:
                self._shipped_sizes.pop(agent.id, None)

    def _output_sizes(self, agents: list[agent_pb2.Agent]) -> dict[str, int | None]:
        """Each agent's output file size (None: there is none to tell)."""
        sizes: dict[str, int | None] = {}
        for agent in agents:
            try:
                sizes[agent.id] = os.lstat(AgentFiles.of(self.ctx.root, agent.id).output).st_size
            except (OSError, ValueError):
                sizes[agent.id] = None
        return sizes

    async def _meter_safely(self, agent: agent_pb2.Agent) -> bool:
        """One agent's usage must never stop the watch of the others: a failure waits for the next
        tick. True when its usage is recorded as its output says."""
        try:
            await self.meter(agent)
        except (grpc.aio.AioRpcError, Stale, OSError) as error:
            log.warning("usage of agent %s (%s) not recorded this time: %s", agent.name, agent.id, error)
            return False
        return True

    async def meter(self, agent: agent_pb2.Agent) -> None:
        """Stores the agent's usage so far; a run whose task's budget it passed is stopped and the
        task BLOCKED with the budget as its reason (controllers/agent_runs/usage.py)."""
        recorded = await self.usage.record(agent)
        task = self.ctx.cache.tasks.get(agent.task_id) if agent.task_id else None
        if recorded.usage == agent.usage or task is None or recorded.status != agent_pb2.AGENT_STATUS_RUNNING:
            return
        passed = await self.usage.task_spent(task)
        if passed is not None:
            log.info("agent %s (%s): %s; stopping it", agent.name, agent.id, passed.reason)
            await self.stops.stop(agent.id, budget=passed.reason)

    def _reap_children(self) -> None:
        for agent_id, child in list(self.ctx.children.items()):
            if child.poll() is not None:
                del self.ctx.children[agent_id]

    def _ended(self, agents: list[agent_pb2.Agent]) -> list[str]:
        ended = []
        running = {agent.id for agent in agents}
        for gone in self._seen_running.keys() - running:
            del self._seen_running[gone]
        for agent in agents:
            child = self.ctx.children.get(agent.id)
            if child is not None and self._seen_running.get(agent.id) is child and child.poll() is None:
                continue  # seen running as our shim, and still our unreaped child: still running
            files = AgentFiles.of(self.ctx.root, agent.id)
            observed = supervisor.observe(files, agent.update_time.seconds, agent.pid)
            if observed.liveness != Liveness.RUNNING:
                ended.append(agent.id)
            elif child is not None and observed.identified:
                self._seen_running[agent.id] = child
            else:
                self._seen_running.pop(agent.id, None)
        return ended

    # ---- settling -------------------------------------------------------------------------------

    async def settle(self, agent_id: str) -> None:
        agent = self.ctx.cache.agents.get(agent_id)
        if agent is None or agent.status != agent_pb2.AGENT_STATUS_RUNNING or not self.ctx.mine(agent):
            return
        files = AgentFiles.of(self.ctx.root, agent.id)
        observed = await asyncio.to_thread(supervisor.observe, files, agent.update_time.seconds, agent.pid)
        if observed.liveness == Liveness.RUNNING:
            return
        await fetch_back(self.ctx, agent)
        if self.ctx.settings.sandbox.max_processes:
            await asyncio.to_thread(pids_cgroup.remove, agent.id)
        task = await self._task_of(agent)
        try:
            if await self._never_started(agent, files, observed):
                await self.write(agent, task, outcomes.never_started(task, "the agent's process never started"))
            elif not await self._settle_run(agent, task, files, observed):
                return  # the agent goes on in a new session: its credentials stay
        except Stale:
            self.queue.add(agent_id)  # decide again from what is stored now
            return
        await asyncio.to_thread(launcher.remove_credentials, files)

    async def _never_started(self, agent: agent_pb2.Agent, files: AgentFiles, observed: supervisor.Observation) -> bool:
        """No process was ever recorded for this run (the orchestrator died between the agent's row
        and its process), or the shim found the run abandoned: no attempt was spent."""
        if observed.abandoned:
            return True
        if observed.liveness != Liveness.VANISHED or not await asyncio.to_thread(supervisor.abandon, files):
            return False
        return not agent.HasField("pid")

    async def _settle_run(
        self, agent: agent_pb2.Agent, task: task_pb2.Task | None, files: AgentFiles, observed: supervisor.Observation
    ) -> bool:
        """Settles the run; False when it is not over after all (a new CLI session took it on)."""
        await self.ctx.shipper.ship(agent, final=True)
        agent = await self.usage.record(agent, final=True)
        outcome = await self._outcome_of(agent, files, observed)
        label = "fenced" if observed.fenced else outcome_label(outcome)
        done = outcome.kind == dispatch.OutcomeKind.DONE and agent.mode == agent_pb2.AGENT_MODE_EXECUTE
        # Before its branch is pushed. A run whose shim recorded its exit has no process left to
        # commit after the fetch back `settle` made; one that vanished is fetched again.
        fetched = observed.liveness == Liveness.EXITED
        left = await self.checkpointer.after_run(agent, task, label, done, fetched=fetched)
        await self._publish(agent, task)
        return await self._settle_outcome(agent, task, outcome, left=left, label=label)

    async def _outcome_of(
        self, agent: agent_pb2.Agent, files: AgentFiles, observed: supervisor.Observation
    ) -> dispatch.AgentOutcome:
        """A run its shim fenced is a crashed attempt, as one taken over is."""
        if observed.fenced:
            return dispatch.AgentOutcome(dispatch.OutcomeKind.CRASH, error=policy.FENCED_REASON)
        if observed.liveness == Liveness.VANISHED:
            await asyncio.to_thread(supervisor.kill_group, files, agent.pid)
            return dispatch.classify_exit(None, None)
        return await asyncio.to_thread(
            claude_outcome.run_outcome, agent.provider, files, observed.exit_code, self.ctx.clock()
        )

    async def _publish(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> None:
        """The run's commits go to the shared remote before its settlement is written (git first,
        store second: no orchestrator merges a task whose branch it cannot see yet). Only while the
        run is still ours, as stored: one taken over meanwhile is not pushed over its successor."""
        initiative_id = self.ctx.cache.initiative_id_of(task) if task is not None else ""
        projects = [p for p in self.ctx.cache.projects_of(initiative_id) if p.shared_remote] if initiative_id else []
        if task is None or not projects:
            return
        fresh = await self.ctx.writer.reread(RowKind.AGENT, agent.id)
        if fresh is None or fresh.status != agent_pb2.AGENT_STATUS_RUNNING or not self.ctx.mine(fresh):
            raise Stale(f"agent {agent.id} is no longer ours to settle")
        for project in projects:
            await asyncio.to_thread(shared.publish_settled, self.ctx.git, project, task_branch(task.id))

    async def settle_lost(self, agent: agent_pb2.Agent, reason: str, note: outcomes.Note) -> None:
        """The run of an orchestrator that died: settled as a crash, with `note` (takeovers)."""
        task = await self._task_of(agent)
        await self._settle_outcome(agent, task, dispatch.AgentOutcome(dispatch.OutcomeKind.CRASH, error=reason), [note])

    async def _settle_outcome(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task | None,
        outcome: dispatch.AgentOutcome,
        notes: Sequence[outcomes.Note] = (),
        *,
        left: leftovers.Left | None = None,
        label: str = "",
    ) -> bool:
        """The run settled by its kind (runs/table.py); False when it goes on in a new session."""
        said = None if left is None else (left, label or outcome_label(outcome))
        if not await self.kinds.settle(RunEnd(agent, task, outcome, tuple(notes), said)):
            return False
        log.info("agent %s (%s) settled: %s", agent.name, agent.id, outcome.kind)
        return True

    async def _task_of(self, agent: agent_pb2.Agent) -> task_pb2.Task | None:
        return await task_of(self.ctx, agent)

    async def stop(self, agent_id: str) -> agent_pb2.Agent:
        """StopAgent (controllers/agent_runs/stops.py)."""
        return await self.stops.stop(agent_id)

    async def write(self, agent: agent_pb2.Agent, task: task_pb2.Task | None, settlement: outcomes.Settlement) -> None:
        """One transaction: the agent's row, its task's row, the account's rest, their events."""
        requests = [update(agent, **settlement.agent)]
        if settlement.task is not None and task is not None:
            requests.append(update(task, **settlement.task))
        if settlement.account_rests_until is not None and agent.account_id:
            requests.append(_rest_account(agent.account_id, settlement.account_rests_until))
        if settlement.account_unusable_reason is not None and agent.account_id:
            requests.append(_set_aside_account(agent.account_id, settlement.account_unusable_reason))
        requests += settlement.creates
        notes = [
            event(note.type, agent if note.about == "agent" else task, **note.details) for note in settlement.notes
        ]
        await self.ctx.writer.append(notes, requests)


def _set_aside_account(account_id: str, reason: str) -> account_pb2.UpdateAccountRequest:
    """Unconditional, like a rest: a refused credential stays refused until a person updates it."""
    return account_pb2.UpdateAccountRequest(
        account=account_pb2.Account(id=account_id, unusable_reason=reason),
        update_mask=field_mask_pb2.FieldMask(paths=["unusable_reason"]),
    )


_LABELS = {
    dispatch.OutcomeKind.DONE: "done",
    dispatch.OutcomeKind.ERROR: "failed",
    dispatch.OutcomeKind.CRASH: "crashed",
    dispatch.OutcomeKind.RATE_LIMITED: "rate limited",
    dispatch.OutcomeKind.CREDENTIALS_REFUSED: "credentials refused",
}


def outcome_label(outcome: dispatch.AgentOutcome) -> str:
    """How a run ended, in the words of its checkpoint's message and event."""
    if outcome.kind == dispatch.OutcomeKind.QUESTIONS:
        return "waiting for answers"
    return _LABELS.get(outcome.kind, outcome.kind)


def _rest_account(account_id: str, until: datetime) -> account_pb2.UpdateAccountRequest:
    """Unconditional: the account's row changes on every use, and resting it is always right."""
    request = account_pb2.UpdateAccountRequest(
        account=account_pb2.Account(id=account_id, is_exhausted=True),
        update_mask=field_mask_pb2.FieldMask(paths=["is_exhausted", "exhausted_until"]),
    )
    request.account.exhausted_until.CopyFrom(timestamp(until))
    return request
