"""The conversations controller: an agent's question to another agent, from its report to its answer.

1. A run reports `{"status": "ask", "to": ..., "question": ...}`: the conversation is stored (PENDING,
   or ANSWERED at once by cw when nobody can answer), then the asker WAITING_FOR_INPUT on it. It
   holds no slot while it waits.
2. Once the recipient runs nothing else (after its current run, and its task's), its CLI session is
   resumed in discuss mode with `CW_CONVERSATION_ID` and the question as its prompt; the agent row
   records the conversation it answers (`conversation_id`).
3. That run's report answers the conversation (ANSWERED) in the transaction that settles it
   (runs/answer.py; the ask of step 1 is settled by runs/asking.py). A run that gives no answer is
   a failed attempt, counted on the conversation (`attempts`) and retried as a task's run is (the
   same attempts and delays: `next_attempt_time`); after the last one cw answers, saying why, so no
   asker waits forever.
4. An answered conversation resumes its asker with `CW_ANSWERS_FILE` = `{"CONVERSATION_ID": "answer"}`.

Each step is decided from stored rows (decide.py), keyed by conversation id, so a restart at any
point picks up where things stand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from cw.store.v1 import agent_pb2, conversation_pb2, event_pb2, task_pb2
from orchestrator_service.agents import launcher
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.cache.state import Change, RowKind, TaskChange
from orchestrator_service.controllers.agent_runs.launches import Launches
from orchestrator_service.controllers.agent_runs.run_inputs import RunInput
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.queue import WorkQueue
from orchestrator_service.conversations import decide
from orchestrator_service.git import branches, changes
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")
PENDING = conversation_pb2.CONVERSATION_STATUS_PENDING
ANSWERED = conversation_pb2.CONVERSATION_STATUS_ANSWERED
ID_BYTES = 128


class ConversationController:
    def __init__(
        self, ctx: Context, launches: Launches, answer_input: Callable[[decide.AnswerStart], RunInput]
    ) -> None:
        """`answer_input`: what a run resumed to answer starts with (runs/answer.py)."""
        self.ctx = ctx
        self.launches = launches
        self.answer_input = answer_input
        self.queue = WorkQueue("conversations", self.reconcile, concurrency=4)

    def on_change(self, change: Change) -> None:
        cache = self.ctx.cache
        if change.kind == RowKind.CONVERSATION:
            self.queue.add(change.id)
        elif change.kind == RowKind.AGENT:
            row = change.after or change.before
            if row is None:
                return
            for conversation in cache.conversations.values():
                if row.id in (conversation.to_agent_id, conversation.from_agent_id):
                    self.queue.add(conversation.id)
            if change.after is not None and change.after.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
                for conversation_id in decide.asks_an_agent(change.after):
                    self.queue.add(conversation_id)
        elif change.kind == RowKind.TASK and _moved(change):
            for conversation_id in list(cache.conversations):
                self.queue.add(conversation_id)  # a recipient may wait for its task's run to end

    # ---- a pending conversation -------------------------------------------------------------------

    async def reconcile(self, conversation_id: str) -> None:
        conversation = self.ctx.cache.conversations.get(conversation_id) or await self._read(conversation_id)
        if conversation is None:
            self.ctx.cache.drop(RowKind.CONVERSATION, conversation_id)  # gone with its agents
            return
        if conversation.status == ANSWERED:
            await self._deliver(conversation)
            return
        asker = await self._agent(conversation.from_agent_id)
        answerer = await self._agent(conversation.to_agent_id)
        task = await self._task(answerer.task_id) if answerer is not None and answerer.task_id else None
        others = task is not None and any(a.id != answerer.id for a in self.ctx.cache.live_agents_of(task.id))  # type: ignore[union-attr]
        step = decide.next_step(conversation, asker, answerer, task, others, now=self.ctx.clock())
        try:
            if step.action == decide.WAIT and step.after > 0:
                self.queue.add(conversation_id, delay=step.after)
            elif step.action == decide.ANSWER:
                await self._answer(conversation, answerer, step.text)
            elif step.action == decide.RESUME and asker is not None and answerer is not None:
                if self._elsewhere(answerer):
                    return
                await self._resume_answerer(conversation, asker, answerer, task)
        except Stale:
            return  # the rows read again are queued again

    def _elsewhere(self, agent: agent_pb2.Agent) -> bool:
        """Another live orchestrator ran the agent: it resumes it, in the CLI session it keeps."""
        return self.ctx.runs_elsewhere(agent)

    async def _read(self, conversation_id: str) -> conversation_pb2.Conversation | None:
        return await self._stored(RowKind.CONVERSATION, conversation_id)  # type: ignore[no-any-return]

    async def _agent(self, agent_id: str) -> agent_pb2.Agent | None:
        return self.ctx.cache.agents.get(agent_id) or await self._stored(RowKind.AGENT, agent_id)

    async def _task(self, task_id: str) -> task_pb2.Task | None:
        return self.ctx.cache.tasks.get(task_id) or await self._stored(RowKind.TASK, task_id)

    async def _stored(self, kind: str, row_id: str) -> Any:
        """A row read from the store and not put in the cache: finished rows are not live work, and
        putting one would announce it again (and queue this very key again)."""
        try:
            return await self.ctx.store.get(kind, row_id)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def _answer(
        self, conversation: conversation_pb2.Conversation, answerer: agent_pb2.Agent | None, text: str
    ) -> None:
        """cw answers in the recipient's place, saying why; the recipient stops answering it."""
        requests: list[Message] = []
        if answerer is not None and answerer.conversation_id == conversation.id:
            requests.append(update(answerer, conversation_id=None))
        requests.append(conversation_pb2.AnswerConversationRequest(id=conversation.id, answer=text))
        await self._write_answer(conversation, [], requests)

    async def _write_answer(
        self, conversation: conversation_pb2.Conversation, notes: list[event_pb2.Event], requests: list[Message]
    ) -> None:
        """An answer, unless the conversation was answered meanwhile (then it is read again)."""
        try:
            await self.ctx.writer.append(notes, requests)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            await self.ctx.writer.reread(RowKind.CONVERSATION, conversation.id)  # answered meanwhile: not pending

    async def _resume_answerer(
        self,
        conversation: conversation_pb2.Conversation,
        asker: agent_pb2.Agent,
        answerer: agent_pb2.Agent,
        task: task_pb2.Task | None,
    ) -> None:
        """The recipient's session, resumed in discuss mode with the question. The claim is guarded
        by the recipient's and its task's rows, so no other run of that task can start with it."""
        provider = self.launches.provider_for(answerer.provider)
        blocked = self.launches.cannot_run(provider)
        if blocked:
            await self._answer(conversation, answerer, f"{decide.CW_SAYS}{answerer.name} cannot run now: {blocked}")
            return
        files = AgentFiles.of(self.ctx.root, answerer.id)
        await self.launches.workdirs.adopt(answerer, task)
        await asyncio.to_thread(files.archive_session)
        await asyncio.to_thread(launcher.write_answers, files, {})
        claim = [
            update(
                answerer,
                status=agent_pb2.AGENT_STATUS_RUNNING,
                conversation_id=conversation.id,
                outcome=None,
                pending_questions=None,
                error=None,
                orchestrator=self.ctx.settings.name or None,
            )
        ]
        if task is not None:
            claim.append(update(task))  # changes nothing; fails if the task moved since it was read
        claimed = (await self.ctx.writer.append([], claim)).rows[0].agent
        asker_task = await self._task(asker.task_id) if asker.task_id else None
        own = decide.OwnWork(task, await self._changed_files(task))
        run = self.answer_input(decide.AnswerStart(conversation, asker.name, asker_task, own))
        secrets = await self.launches.secrets_for(claimed.account_id, provider)
        launch = launcher.Launch(
            claimed, files, provider, "discuss", run.prompt, resume=True, secrets=secrets, environment=run.environment
        )
        try:
            await self.launches.spawn(claimed, launch)
        except Exception as error:
            log.warning("agent %s could not be resumed to answer: %s", claimed.name, error)
            back = update(claimed, status=agent_pb2.AGENT_STATUS_STOPPED, outcome=agent_pb2.AGENT_OUTCOME_NEVER_STARTED)
            text = f"{decide.CW_SAYS}{claimed.name} could not be resumed to answer"
            await self._write_answer(
                conversation, [], [back, conversation_pb2.AnswerConversationRequest(id=conversation.id, answer=text)]
            )

    async def _changed_files(self, task: task_pb2.Task | None) -> dict[str, list[str]]:
        """Per project name, the files the task's branch changed (none when it cannot be told)."""
        if task is None:
            return {}
        initiative = self.ctx.cache.initiatives.get(task.initiative_id) or await self.ctx.store.get_initiative(
            task.initiative_id
        )
        found: dict[str, list[str]] = {}
        for project in await self.ctx.store.projects_of(initiative.id):
            try:
                base, branch = branches.base_branch(task, initiative), task_branch(task.id)
                if await asyncio.to_thread(self.ctx.git.branch_exists, project.id, branch):
                    found[project.name] = await asyncio.to_thread(
                        changes.changed_files, self.ctx.git, project.id, base, branch
                    )
            except GitError as error:
                log.warning("changed files of task %s in %s unknown: %s", task.id, project.name, error)
        return found

    async def _deliver(self, conversation: conversation_pb2.Conversation) -> None:
        """The asker, if it still waits on this conversation, resumed with the answer."""
        asker = await self._agent(conversation.from_agent_id)
        if asker is None or asker.status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
            return
        if conversation.id not in decide.asks_an_agent(asker) or self._elsewhere(asker):
            return
        task = await self._task(asker.task_id) if asker.task_id else None
        try:
            await self.launches.resume(asker, task, {conversation.id: conversation.answer})
        except Stale:
            return


def _moved(change: TaskChange) -> bool:
    """A cached row whose status changed (not one that merely came into or left the cache)."""
    return change.before is not None and change.after is not None and change.before.status != change.after.status
