"""What a run reports beside its status, and what a review agent reads: the hooks review adds to
starting and settling runs (core.py installs them).

- A review task's prompt holds its phase's diff; its agent answers with `review_comments`, stored
  as comments by the agent's name (its branch is not merged: dispatch.merges_work).
- A revision's agent reports `resolved_comments`; those among the comments it was given are stored
  on its task, and resolved once its work is merged (repair.py).
- A merge task's run that leaves a conflict marker in the files its branch changes is a failed
  attempt, whatever it said.
- Any run's `messages` are stored for the person (MessageService), shown in `cw inbox`; one that
  requires a response makes the agent wait for the reply (conversations/person.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cw.store.v1 import agent_pb2, message_pb2, review_comment_pb2, task_pb2
from cw_edge import diffs
from orchestrator_service import dispatch, outcomes
from orchestrator_service.agents.claude_outcome import clip
from orchestrator_service.controllers.agents import Write
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.run_inputs import Continuation, RunInput
from orchestrator_service.conversations import replies
from orchestrator_service.conversations.person import Replies
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind
from orchestrator_service.git import branches, conflicts
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.outcomes import Settlement
from orchestrator_service.review import comments, merge_tasks
from orchestrator_service.review.phase_merge import PhaseMerger

MAX_MESSAGES = 10
MESSAGE_BYTES = 16 * 1024


def messages_from(report: Mapping[str, Any], agent: agent_pb2.Agent) -> list[message_pb2.CreateMessageRequest]:
    """`"messages": ["text", {"content": "...", "requires_response": true}]` as messages to the person."""
    items = report.get("messages")
    if not isinstance(items, list):
        return []
    found = []
    for item in items[:MAX_MESSAGES]:
        content = item if isinstance(item, str) else item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, str) or not content.strip():
            continue
        answer_wanted = isinstance(item, dict) and item.get("requires_response") is True
        message = message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
            sender_id=agent.id,
            recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
            type=message_pb2.MESSAGE_TYPE_QUESTION if answer_wanted else message_pb2.MESSAGE_TYPE_INFO,
            content=clip(content, MESSAGE_BYTES),
            requires_response=answer_wanted,
        )
        found.append(message_pb2.CreateMessageRequest(message=message))
    return found


class Reports:
    def __init__(
        self,
        ctx: Context,
        merger: PhaseMerger,
        dependencies: Callable[[task_pb2.Task], Awaitable[list[task_pb2.Task]]],
        found: Replies,
    ) -> None:
        self.ctx = ctx
        self.merger = merger
        self.replies = found
        self.dependencies = dependencies  # the tasks a task depends on (Launches.dependencies_of)

    async def _files(self, phase_id: str) -> list[comments.ProjectFiles]:
        phase = self.ctx.cache.phases.get(phase_id) or await self.ctx.store.get_phase(phase_id)
        return [
            comments.ProjectFiles(project.id, project.name, diffs.by_path(diff.unified))
            for project, diff in await self.merger.diffs(phase)
        ]

    # ---- starting ---------------------------------------------------------------------------------

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput | None:
        """A review task reads its phase's diff as it stands when it starts (a run planner,
        controllers/launches.py); any other task its usual prompt."""
        if task.category != task_pb2.TASK_CATEGORY_REVIEW or not task.phase_id:
            return None
        phase = self.ctx.cache.phases.get(task.phase_id) or await self.ctx.store.get_phase(task.phase_id)
        found = await self.merger.diffs(phase)
        prompt = dispatch.build_prompt(task, await self.dependencies(task))
        return RunInput(prompt + comments.review_prompt([(p.name, d.unified) for p, d in found]), {})

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return None

    # ---- settling ---------------------------------------------------------------------------------

    async def check(self, agent: agent_pb2.Agent, task: task_pb2.Task | None, outcome: AgentOutcome) -> AgentOutcome:
        """A merge task's "done" with conflict markers left in its branch is a failed attempt."""
        if outcome.kind != OutcomeKind.DONE or task is None or not merge_tasks.is_merge_task(task):
            return outcome
        initiative = self.ctx.cache.initiatives.get(self.ctx.cache.initiative_id_of(task))
        if initiative is None:
            return outcome
        left = []
        for project in self.ctx.cache.projects_of(initiative.id):
            if not await asyncio.to_thread(self.ctx.git.branch_exists, project.id, task_branch(task.id)):
                continue
            base = branches.base_branch(task, initiative)
            files = await asyncio.to_thread(
                conflicts.files_with_markers, self.ctx.git, project.id, base, task_branch(task.id)
            )
            left += [f"{project.name}/{name}" for name in files]
        if not left:
            return outcome
        return dataclasses.replace(
            outcome, kind=OutcomeKind.ERROR, error="conflict markers remain in " + ", ".join(left)
        )

    async def extend(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task | None,
        outcome: AgentOutcome,
        settlement: Settlement,
        write: Write,
    ) -> None:
        """The run's messages, a review agent's comments, a revision's resolved comments, the
        replies it was given (READ): in the transaction that settles the run (a settle extension,
        controllers/agents.py). A message that requires a response makes the agent wait for it."""
        messages = messages_from(outcome.report, agent)
        delivered = await self.replies.delivered(agent)
        if may_wait(task, outcome) and any(m.message.requires_response for m in messages):
            await write(await self._waiting(agent, task, outcome, messages, (*settlement.creates, *delivered)))
            return
        if not replies.keeps_what_it_read(settlement.agent):
            delivered = []  # the replies go to the next attempt's new session as well
        creates: list[Any] = [*settlement.creates, *messages, *delivered]
        task_values = settlement.task
        completing = task is not None and task_values is not None and outcome.kind == OutcomeKind.DONE
        if completing and task is not None and task.category == task_pb2.TASK_CATEGORY_REVIEW and task.phase_id:
            found = comments.from_report(outcome.report, task.phase_id, agent.name, await self._files(task.phase_id))
            creates += [review_comment_pb2.CreateReviewCommentRequest(review_comment=c) for c in found]
        if completing and task is not None and task.review_comment_ids:
            task_values = {**(task_values or {}), "resolved_comment_ids": comments.resolved_by(task, outcome.report)}
        await write(dataclasses.replace(settlement, task=task_values, creates=tuple(creates)))

    async def _waiting(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task | None,
        outcome: AgentOutcome,
        messages: list[message_pb2.CreateMessageRequest],
        kept: tuple[Any, ...],
    ) -> Settlement:
        """The agent waits for the person's replies as for answers to its questions (its task
        stays IN_PROGRESS, no slot held); the messages are stored first, for their ids."""
        created = await self.replies.create(agent, messages)
        questions = [*replies.message_questions(created), *outcome.questions]
        asked = dataclasses.replace(outcome, kind=OutcomeKind.QUESTIONS, questions=questions)
        waiting = outcomes.settle(agent, task, asked, self.ctx.clock(), delays=self.ctx.settings.retry_delays)
        return dataclasses.replace(waiting, creates=kept)


def may_wait(task: task_pb2.Task | None, outcome: AgentOutcome) -> bool:
    """A run that ends well (done, or questions) may wait for replies; a failed one does not (its
    messages are stored, and their replies go to the task's next attempt), nor a planning run."""
    planning = task is not None and dispatch.agent_mode(task) != "execute"
    return outcome.kind in (OutcomeKind.DONE, OutcomeKind.QUESTIONS) and not planning
