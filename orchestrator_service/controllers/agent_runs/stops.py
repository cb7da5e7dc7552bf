"""Ending agents' processes: a person's stop (StopAgent), and runs this orchestrator no longer owns
whose processes still work here.

A process ends as its agent's row says, whoever wrote the row: a stop through another
orchestrator, or a takeover by another while this one was cut off from the store (its lease
lapsed), makes the row STOPPED or CRASHED, and the orchestrator whose workspace holds the process
ends it when it sees the change, or at its next start (`sweep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import grpc

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service.agents import launcher, process, supervisor
from orchestrator_service.agents.shim import IDENTITY_FILE
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.cache.state import LIVE_AGENT, RowKind
from orchestrator_service.controllers.agent_runs.checkpointing import Checkpointer
from orchestrator_service.controllers.context import Context
from orchestrator_service.events import event
from orchestrator_service.git import branches
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")

STOP_GRACE_SECONDS = 5.0
# How long a stop waits for the very agent it stops to finish starting.
SPAWN_WAIT_SECONDS = 30.0


async def task_of(ctx: Context, agent: agent_pb2.Agent) -> task_pb2.Task | None:
    """The agent's task: from the cache, or read."""
    if not agent.task_id:
        return None
    return ctx.cache.tasks.get(agent.task_id) or await ctx.writer.reread(RowKind.TASK, agent.task_id)


async def fetch_back(ctx: Context, agent: agent_pb2.Agent) -> None:
    """The run's task branches, as it left them in its own repositories, into the orchestrator's
    clones (git/agent_repos.py): before anything reads them, and after a stop."""
    projects = ctx.cache.projects_of(agent.initiative_id) if agent.initiative_id else []
    await asyncio.to_thread(branches.fetch_run_branches, ctx.git, projects, agent.task_id)


class Stops:
    def __init__(self, ctx: Context, checkpointer: Checkpointer | None = None) -> None:
        self.ctx = ctx
        # Commits what a stopped run left once its process is gone (controllers/agent_runs/checkpointing.py).
        self.checkpointer = checkpointer
        self._stopping: set[asyncio.Task[None]] = set()
        self._terminating: set[str] = set()
        # Run once a stopped agent's process has ended (its usage recorded: controllers/agent_runs/usage.py).
        self.after_end: list[Callable[[agent_pb2.Agent], Awaitable[object]]] = []

    def end_leftover(self, agent: agent_pb2.Agent) -> None:
        """Someone else ended (or took) a run of ours whose process may still work here: a person's
        stop through another orchestrator, or a takeover while this one was cut off from the store.
        The process ends as the row says (a process that has ended already is left alone)."""
        files = AgentFiles.of(self.ctx.root, agent.id)
        if supervisor.live_process_group(files, agent.pid) is not None or agent.id in self.ctx.children:
            log.warning("agent %s is no longer ours to run (status %s): ending its process", agent.name, agent.status)
            self._terminate_later(agent)

    def fence(self) -> None:
        """This orchestrator's lease may be lapsing: every process of its running agents ends at
        once (SIGKILL), before another orchestrator may take their runs over. Each run is settled
        as crashed: here, once the store answers again, or by whoever takes it over."""
        for agent in self.ctx.my_running():
            child = self.ctx.children.get(agent.id)
            if child is not None and child.poll() is None:
                process.signal_group(child.pid, signal.SIGKILL)
            supervisor.kill_group(AgentFiles.of(self.ctx.root, agent.id), agent.pid)

    def sweep(self) -> None:
        """At start: processes left in this workspace by runs that are no longer ours to run (taken
        over while this orchestrator was down) end."""
        running = {agent.id for agent in self.ctx.my_running()}
        for identity in sorted(self.ctx.root.glob(f"agents/*/{IDENTITY_FILE}")):
            agent_id = identity.parent.name
            if agent_id not in running and supervisor.live_process_group(AgentFiles(identity.parent)) is not None:
                log.warning("agent %s runs here but is no longer ours to run: ending it", agent_id)
                supervisor.kill_group(AgentFiles(identity.parent))

    async def stop(self, agent_id: str, budget: str = "") -> agent_pb2.Agent:
        """StopAgent: the agent is STOPPED and its task BLOCKED (not retried automatically), then its
        process group gets SIGTERM, and SIGKILL after a grace period. `budget`: the task's budget
        stopped it, for this reason (controllers/agent_runs/usage.py); its session is resumed on retry."""
        for _ in range(3):
            agent = await self.ctx.store.get_agent(agent_id)
            spawning = self.ctx.spawning.get(agent.task_id)
            if spawning is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(spawning.wait(), SPAWN_WAIT_SECONDS)
                agent = await self.ctx.store.get_agent(agent_id)
            if agent.status not in LIVE_AGENT:
                return agent
            task = await task_of(self.ctx, agent)
            requests = [
                update(
                    agent,
                    status=agent_pb2.AGENT_STATUS_STOPPED,
                    outcome=agent_pb2.AGENT_OUTCOME_STOPPED,
                    result=json.dumps({"status": "stopped", **({"budget": budget} if budget else {})}),
                )
            ]
            notes = [event("agent:stopped", agent, outcome="AGENT_OUTCOME_STOPPED")]
            if task is not None and task.status == task_pb2.TASK_STATUS_IN_PROGRESS:
                why = budget or "its agent was stopped by a person"
                requests.append(update(task, status=task_pb2.TASK_STATUS_BLOCKED, reason=why))
                notes.append(event("task:blocked", task, reason="budget" if budget else "agent stopped"))
            try:
                answer = await self.ctx.writer.append(notes, requests)
            except Stale:
                continue
            if self.ctx.mine(agent):  # another orchestrator's ends it when it sees the row
                self._terminate_later(agent)
            return answer.rows[0].agent
        return await self.ctx.store.get_agent(agent_id)

    def _terminate_later(self, agent: agent_pb2.Agent) -> None:
        if agent.id in self._terminating:
            return
        self._terminating.add(agent.id)
        files = AgentFiles.of(self.ctx.root, agent.id)
        child = self.ctx.children.get(agent.id)
        # A shim this process started leads its own group even before it recorded itself.
        pgid = (
            child.pid if child is not None and child.poll() is None else supervisor.live_process_group(files, agent.pid)
        )
        stopping = asyncio.create_task(self._terminate(agent, pgid))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        stopping.add_done_callback(lambda _: self._terminating.discard(agent.id))

    async def _checkpoint(self, agent: agent_pb2.Agent) -> None:
        """What the stopped run left, onto its branch; its event tells the person."""
        assert self.checkpointer is not None
        try:
            left = await self.checkpointer.after_stop(agent)
        except Exception:  # the process is stopped whatever happens here; the next start checkpoints
            log.exception("the checkpoint of stopped agent %s failed", agent.name)
            return
        if left.commits or left.left_out:
            details = {"outcome": "stopped", "commits": left.commits, "files": left.taken, "left_out": left.left_out}
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.ctx.writer.append([event("agent:checkpointed", agent, **details)], [])

    async def _terminate(self, agent: agent_pb2.Agent, pgid: int | None) -> None:
        if pgid is not None:
            process.signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while time.monotonic() < deadline and process.start_time(pgid) is not None:
                await asyncio.sleep(0.1)
            process.signal_group(pgid, signal.SIGKILL)
        await fetch_back(self.ctx, agent)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.ctx.shipper.ship(agent, final=True)
            for hook in self.after_end:
                await hook(agent)
        if self.checkpointer is not None:
            await self._checkpoint(agent)
        await asyncio.to_thread(launcher.remove_credentials, AgentFiles.of(self.ctx.root, agent.id))
