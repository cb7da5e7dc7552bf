"""The person's replies to agents' messages (`cw reply`): given to runs, and resuming the agents
that wait for them. Decisions are in replies.py.

- Starting a run (each kind of run, runs/steps.py `replies_given`): the PENDING replies to the messages of the task's
  agents go into its prompt, and their ids into `replies.json` in the agent's control directory.
- Settling that run (runs/steps.py `told`, an ask: runs/asking.py): those replies are READ in
  the transaction that settles it. A run whose process never started (no shim identity) gives
  none: its replies go to the next run. An orchestrator killed in between settles the run later,
  from its files.
- An agent WAITING_FOR_INPUT on messages (requires_response) is resumed once each has a reply:
  the replies controller, keyed by agent id, looks again when the agent starts waiting (at start-up
  too: every live agent is listed) and whenever a message changes (a reply marks it RESPONDED).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.message import Message

from cw.store.v1 import agent_pb2, message_pb2, task_pb2
from orchestrator_service.agents import control_files
from orchestrator_service.agents.shim import IDENTITY_FILE
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.cache import known
from orchestrator_service.cache.state import Change, RowKind
from orchestrator_service.controllers.agent_runs.launches import Launches
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.conversations import replies
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")
DELIVERED_FILE = "replies.json"


def delivered_file(files: AgentFiles) -> Path:
    return files.control / DELIVERED_FILE


def _write_private(path: Path, text: str) -> None:
    control_files.write_private(path, text)  # never through a symlink an agent planted


def _read(path: Path) -> str | None:
    try:
        return control_files.read_text(path, 64 * 1024)
    except OSError:
        return None


class Replies:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def messages(self, **where: str) -> list[message_pb2.Message]:
        store = self.ctx.store
        request = message_pb2.ListMessagesRequest(**where)  # type: ignore[arg-type]
        return await store.list_all(store.messages.ListMessages, request, "messages")

    async def _agent_ids(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> list[str]:
        if task is None:
            return [agent.id]
        found = await known.agent_ids(self.ctx.store, self.ctx.cache, task)
        return sorted({agent.id, *found})

    async def exchanges(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> list[replies.Exchange]:
        """The replies no run has read yet to the messages of the task's agents."""
        found: list[replies.Exchange] = []
        for agent_id in await known.with_messages(self.ctx.cache, await self._agent_ids(agent, task)):
            received = replies.undelivered(await self.messages(recipient_id=agent_id))
            if not received:
                continue
            sent = {m.id: m for m in await self.messages(sender_id=agent_id)}
            found += [replies.Exchange(reply, sent.get(reply.parent_message_id)) for reply in received]
        return found

    # ---- a run starts ---------------------------------------------------------------------------

    async def prompt_for(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> str:
        """The replies this run is given (runs/steps.py `replies_given`); recorded in the
        agent's control directory, so its settlement marks them READ."""
        given = await self.exchanges(agent, task)
        files = AgentFiles.of(self.ctx.root, agent.id)
        ids = [exchange.reply.id for exchange in given]
        await asyncio.to_thread(_write_private, delivered_file(files), json.dumps(ids))
        return replies.replies_prompt(given)

    # ---- a run is settled -----------------------------------------------------------------------

    async def delivered(self, agent: agent_pb2.Agent) -> list[Message]:
        """READ for the replies the agent's last run was given, for its settlement's transaction;
        none when its process never started (no shim identity: the run's files were archived before
        it was claimed), whatever that run is settled as."""
        files = AgentFiles.of(self.ctx.root, agent.id)
        if not await asyncio.to_thread((files.control / IDENTITY_FILE).exists):
            return []
        text = await asyncio.to_thread(_read, delivered_file(files))
        return [
            update(message_pb2.Message(id=message_id), status=message_pb2.MESSAGE_STATUS_READ)
            for message_id in replies.delivered_ids(text)
        ]

    async def create(
        self, agent: agent_pb2.Agent, requests: Sequence[message_pb2.CreateMessageRequest]
    ) -> list[message_pb2.Message]:
        """The run's messages, stored before the agent waits on them: each request_id is the run's
        own, so settling the same run again (after a kill) answers the rows made the first time."""
        stamp = agent.update_time
        for index, request in enumerate(requests):
            request.request_id = f"message-{agent.id}-{stamp.seconds}.{stamp.nanos}-{index}"
        answer = await self.ctx.writer.append([], list(requests))
        return [row.message for row in answer.rows]


class ReplyController:
    """Resumes an agent that waits for replies to its messages once every one has a reply."""

    def __init__(self, ctx: Context, launches: Launches, found: Replies) -> None:
        self.ctx = ctx
        self.launches = launches
        self.replies = found
        self.queue = WorkQueue("replies", self.reconcile, concurrency=2)

    def on_change(self, change: Change) -> None:
        if change.kind == RowKind.AGENT and change.after is not None and replies.awaited_messages(change.after):
            self.queue.add(change.id, reset=change.external)
        elif change.kind == RowKind.MESSAGE:
            for agent in list(self.ctx.cache.agents.values()):
                if change.id in replies.awaited_messages(agent):
                    self.queue.add(agent.id, reset=True)

    async def reconcile(self, agent_id: str) -> None:
        agent = self.ctx.cache.agents.get(agent_id)
        if agent is None or not replies.waits_only_for_replies(agent) or self.ctx.runs_elsewhere(agent):
            return  # another live orchestrator's agent: it resumes it
        awaited = replies.awaited_messages(agent)
        found: list[message_pb2.Message] = []
        for message_id in sorted(awaited):
            found += await self.replies.messages(parent_message_id=message_id)
        answers = replies.answers_from(awaited, found)
        if answers is None:
            return  # a reply is still missing: a message's change brings the agent back
        task = self.ctx.cache.tasks.get(agent.task_id) if agent.task_id else None
        if agent.task_id and task is None:
            task = await self.ctx.writer.reread(RowKind.TASK, agent.task_id)
        try:
            await self.launches.resume(agent, task, answers)
        except Stale:
            return  # resumed meanwhile (an answer), or changed: its change queues it again
        log.info("agent %s resumed with the replies to %s", agent.name, ", ".join(sorted(answers)))
