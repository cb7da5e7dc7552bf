"""Planning runs: a task of category discuss, plan, detail or refine (dispatch.agent_mode).

The planning kinds of run (runs/planning.py) call these.

- Start (`run_input`): the run is shown the initiative's pages and phases, its target and
  the tasks of the phase concerned (material.py); the prompt says what to propose (prompts.py), and
  what it showed is kept where the agent cannot write (`planning/<agent id>.json` in cw's root,
  with each row's `update_time`), so that its report is read against exactly that.
- End (`settle`): a run that reports done has its proposals validated
  (report.py) and stored PENDING before the run is settled, at most once per report (a settlement
  done again after a crash finds them stored); a report that cannot be stored is a failed attempt
  with the reason. A chat turn's proposals are applied at once and its reply stored (chat.py).
- Nothing is merged: the merges controller marks non-execute tasks merged without git.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import grpc

from cw.store.v1 import agent_pb2, chat_session_pb2, event_pb2, proposal_pb2, task_pb2
from orchestrator_service import dispatch, faults, outcomes
from orchestrator_service.cache.state import LIVE_AGENT
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput
from orchestrator_service.controllers.context import Context
from orchestrator_service.paths import safe_id
from orchestrator_service.planning import material
from orchestrator_service.planning.chat import Chats, unanswered
from orchestrator_service.planning.prompts import planning_prompt
from orchestrator_service.planning.report import BadReport, RunView, proposals_of

VIEW_DIRECTORY = "planning"
# The store names a refused proposal by its place among the changes: the report names it by its own.
# Writes the run's settlement (runs/steps.py: its messages, then the agents controller's write).
Write = Callable[[outcomes.Settlement], Awaitable[None]]
_CHANGE_PATH = re.compile(r"changes\[(\d+)\]\.create_proposal\.proposal\.")


class Planning:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.chats = Chats(ctx)

    # ---- starting a run -----------------------------------------------------------------------------

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        """What the run is shown, kept where the agent cannot write, and the prompt."""
        shown = await material.gather(self.ctx.store, task)
        await asyncio.to_thread(self._keep_view, agent.id, shown.view())
        environment = {"CW_TARGET_ID": task.target_id} if task.target_id else {}
        return RunInput(planning_prompt(shown), environment)

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        """A chat's next turn continues the CLI session of the agent that answered before."""
        session = await material.chat_of(self.ctx.store, task)
        if session is None:
            return None
        store = self.ctx.store
        agents: list[agent_pb2.Agent] = await store.list_all(
            store.agents.ListAgents, agent_pb2.ListAgentsRequest(task_id=task.id), "agents"
        )
        earlier = [agent for agent in agents if agent.session_id and agent.status not in LIVE_AGENT]
        if not earlier:
            return None
        messages = unanswered(await self.chats.messages(session.id))
        return Continuation(earlier[-1], {message.id: message.content for message in messages})

    # ---- settling a run ---------------------------------------------------------------------------

    async def settle(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task | None,
        outcome: dispatch.AgentOutcome,
        settlement: outcomes.Settlement,
        write: Write,
    ) -> None:
        """A report's proposals stored, then `write` called once with the settlement (a bad
        report's failed attempt, a chat turn's reply with it, under the chat's lock)."""
        if task is None or outcome.kind != dispatch.OutcomeKind.DONE or settlement.task is None:
            await write(settlement)
            return
        view = await self._bound(task, await asyncio.to_thread(self._view, agent))
        report_id = view.answering or agent.id
        initiative_id = self.ctx.cache.initiative_id_of(task)
        try:
            proposals = proposals_of(
                outcome.report, view, agent_id=agent.id, initiative_id=initiative_id, report_id=report_id
            )
            stored = await self._stored(agent.id, report_id, proposals)
        except BadReport as bad:
            await write(self._bad_report(agent, task, outcome, str(bad)))
            return
        if not view.chat_session_id:
            await write(settlement)
            return
        async with self.chats.lock(view.chat_session_id):
            await write(await self.chats.answered(agent, view, outcome.summary, stored, settlement))

    def _view_file(self, agent_id: str) -> Path:
        """Where what a run was shown is kept: the orchestrator's, never in an agent's directory."""
        return self.ctx.root / VIEW_DIRECTORY / f"{safe_id(agent_id, 'agent id')}.json"

    def _keep_view(self, agent_id: str, view: RunView) -> None:
        path = self._view_file(agent_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(view.to_json())

    def _view(self, agent: agent_pb2.Agent) -> RunView:
        """What the run was shown; nothing when the file is missing (no target can be named)."""
        try:
            return RunView.from_json(self._view_file(agent.id).read_text())
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return RunView()

    async def _bound(self, task: task_pb2.Task, view: RunView) -> RunView:
        """The view with the chat session the store binds to the run's task (the session whose
        `task_id` it is), and the message it answers only when that is one of the session's."""
        session = None
        if view.chat_session_id:
            request = chat_session_pb2.GetChatSessionRequest(id=view.chat_session_id)
            session = await material.found_or_none(self.ctx.store, self.ctx.store.chat_sessions.GetChatSession, request)
        if session is None or session.task_id != task.id:
            session = await material.chat_of(self.ctx.store, task)
        if session is None:
            return replace(view, chat_session_id="", answering="")
        messages = {message.id for message in await self.chats.messages(session.id)}
        return replace(view, chat_session_id=session.id, answering=view.answering if view.answering in messages else "")

    async def _stored(
        self, agent_id: str, report_id: str, proposals: list[proposal_pb2.Proposal]
    ) -> list[proposal_pb2.Proposal]:
        """The report's proposals as stored: found when an earlier settlement stored them, else
        stored now, all of them or none (one AppendEvent). The store's refusal is a BadReport."""
        store = self.ctx.store
        request = proposal_pb2.ListProposalsRequest(agent_id=agent_id, report_id=report_id)
        found: list[proposal_pb2.Proposal] = await store.list_all(store.proposals.ListProposals, request, "proposals")
        if found or not proposals:
            return sorted(found, key=lambda proposal: proposal.sort_order)
        changes = [
            event_pb2.StateChange(create_proposal=proposal_pb2.CreateProposalRequest(proposal=proposal))
            for proposal in proposals
        ]
        try:
            answer = await store.append([], changes)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise
            raise BadReport(_CHANGE_PATH.sub(r"proposals[\1].", error.details() or "refused by the store")) from error
        faults.point("after-proposals-stored")
        return [row.proposal for row in answer.rows]

    def _bad_report(
        self, agent: agent_pb2.Agent, task: task_pb2.Task, outcome: dispatch.AgentOutcome, reason: str
    ) -> outcomes.Settlement:
        failed = replace(outcome, kind=dispatch.OutcomeKind.ERROR, error=f"bad proposal file: {reason}", report={})
        return outcomes.settle(agent, task, failed, self.ctx.clock(), delays=self.ctx.settings.retry_delays)
