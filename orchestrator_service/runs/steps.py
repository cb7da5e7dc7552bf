"""The steps several kinds of run share, as plain functions each kind (runs/*.py) calls in the order
it shows. Each takes the `Tools` of the table (runs/table.py) and the run's frozen `RunEnd` or
`RunStart`; the pure parts (`conflicted`, `completes`, `may_wait`, `waits`, `with_told`) are
tested without I/O (tests/unit/test_run_kinds.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, replace

from google.protobuf.message import Message

from cw.store.v1 import agent_pb2, message_pb2, task_pb2
from orchestrator_service import dispatch, leftovers, outcomes
from orchestrator_service.controllers.agent_runs.launches import Launches
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunInputs, RunStart
from orchestrator_service.controllers.agent_runs.usage import BUDGET_NOTE, budget_continuation, budget_reason
from orchestrator_service.controllers.agents import AgentController, RunEnd
from orchestrator_service.controllers.context import Context
from orchestrator_service.conversations import replies
from orchestrator_service.conversations.person import Replies
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind
from orchestrator_service.git import branches, conflicts
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.outcomes import Settlement
from orchestrator_service.review import merge_tasks
from orchestrator_service.runs import asking
from orchestrator_service.runs.messages import messages_from


@dataclass(frozen=True)
class Tools:
    """What the kinds of run work with: the orchestrator's context, the agents controller (its
    `write` settles a run in one transaction), the launches (a lost session's new start), the
    execute prompt's reads, and the person's replies."""

    ctx: Context
    agents: AgentController
    launches: Launches
    inputs: RunInputs
    replies: Replies


# ---- starting a run --------------------------------------------------------------------------------


def budget_note(agent: agent_pb2.Agent) -> str:
    """A run its task's budget stopped, resumed once the budget was raised, is told why
    (controllers/agent_runs/usage.py)."""
    reason = budget_reason(agent)
    return BUDGET_NOTE.format(reason=reason) if reason is not None and agent.session_id else ""


async def replies_given(tools: Tools, agent: agent_pb2.Agent, task: task_pb2.Task) -> str:
    """The person's replies the run is given (conversations/person.py), recorded so that its
    settlement marks them READ."""
    return await tools.replies.prompt_for(agent, task)


async def told_at_start(tools: Tools, start: RunStart, run: RunInput) -> RunInput:
    """Every kind's prompt ends the same way: why a budget stopped its last run (`budget_note`),
    then the person's replies it is given (`replies_given`)."""
    more = budget_note(start.agent) + await replies_given(tools, start.agent, start.task)
    return RunInput(run.prompt + more, run.environment)


async def execute_inputs(tools: Tools, start: RunStart) -> RunInput:
    """What an execute, merge or revision run starts with: the task with its dependencies'
    summaries and its phase's other tasks (`RunInputs.execute_input`), told at start."""
    return await told_at_start(tools, start, await tools.inputs.execute_input(start.task))


async def budget_resumed(tools: Tools, task: task_pb2.Task) -> Continuation | None:
    """The session a task's budget stopped goes on once the task is retried (controllers/agent_runs/usage.py)."""
    return await budget_continuation(tools.ctx, task)


# ---- settling a run --------------------------------------------------------------------------------


async def asked_another_agent(tools: Tools, end: RunEnd) -> bool:
    """A run that reports `ask` waits for another agent's answer (runs/asking.py): True when it
    was settled so."""
    if end.outcome.kind != OutcomeKind.ASK:
        return False
    await asking.settle_ask(tools.ctx, tools.agents, tools.replies, end)
    return True


async def restarted_lost_session(tools: Tools, end: RunEnd) -> bool:
    """The CLI could not resume the agent's session (it no longer knows it): the same agent starts
    a new session with the task and the answers it was given (Launches.new_session). True when it
    did: the run is not over."""
    if not end.outcome.unknown_session or end.task is None:
        return False
    await tools.launches.new_session(end.agent, end.task)
    return True


def conflicted(outcome: AgentOutcome, left: list[str]) -> AgentOutcome:
    """Pure: a "done" that left conflict markers (in `left`, `project/file`) is a failed attempt."""
    if outcome.kind != OutcomeKind.DONE or not left:
        return outcome
    return dataclasses.replace(outcome, kind=OutcomeKind.ERROR, error="conflict markers remain in " + ", ".join(left))


async def conflict_markers(ctx: Context, task: task_pb2.Task | None, outcome: AgentOutcome) -> AgentOutcome:
    """A merge task's "done" with conflict markers left in the files its branch changes is a failed
    attempt, whatever it said."""
    if outcome.kind != OutcomeKind.DONE or task is None or not merge_tasks.is_merge_task(task):
        return outcome
    initiative = ctx.cache.initiatives.get(ctx.cache.initiative_id_of(task))
    if initiative is None:
        return outcome
    left = []
    for project in ctx.cache.projects_of(initiative.id):
        if not await asyncio.to_thread(ctx.git.branch_exists, project.id, task_branch(task.id)):
            continue
        base = branches.base_branch(task, initiative)
        files = await asyncio.to_thread(conflicts.files_with_markers, ctx.git, project.id, base, task_branch(task.id))
        left += [f"{project.name}/{name}" for name in files]
    return conflicted(outcome, left)


async def decided(tools: Tools, end: RunEnd, outcome: AgentOutcome) -> Settlement:
    """The settlement pure policy decides (outcomes.settle), a failed run's output tail in its
    reason, with the notes the run ends with (a take-over's)."""
    ctx = tools.ctx
    tail = await ctx.shipper.tail(end.agent.id) if outcome.kind in (OutcomeKind.CRASH, OutcomeKind.ERROR) else ""
    settlement = outcomes.settle(
        end.agent, end.task, outcome, ctx.clock(), output_tail=tail, delays=ctx.settings.retry_delays
    )
    return replace(settlement, notes=[*settlement.notes, *end.notes]) if end.notes else settlement


@dataclass(frozen=True)
class Told:
    """What a run said to the person (its report's `messages`) and the replies it was given (READ
    once it is settled)."""

    messages: list[message_pb2.CreateMessageRequest]
    delivered: list[Message]


async def told(tools: Tools, end: RunEnd, outcome: AgentOutcome) -> Told:
    """Read once per settlement: the replies it was given are READ in the same transaction as the
    run's own messages, so the person never sees a reply marked read for a run not yet settled."""
    return Told(messages_from(outcome.report, end.agent), await tools.replies.delivered(end.agent))


def completes(task: task_pb2.Task | None, outcome: AgentOutcome, settlement: Settlement) -> bool:
    """Pure: the run completes its task, so its report is read for what the kind stores with it (a
    review's comments, a revision's resolved comments)."""
    return task is not None and settlement.task is not None and outcome.kind == OutcomeKind.DONE


def may_wait(task: task_pb2.Task | None, outcome: AgentOutcome) -> bool:
    """A run that ends well (done, or questions) may wait for replies; a failed one does not (its
    messages are stored, and their replies go to the task's next attempt), nor a planning run."""
    planning = task is not None and dispatch.agent_mode(task) != "execute"
    return outcome.kind in (OutcomeKind.DONE, OutcomeKind.QUESTIONS) and not planning


def waits(task: task_pb2.Task | None, outcome: AgentOutcome, said: Told) -> bool:
    """Pure: the run waits for the person's replies (a message requires one)."""
    return may_wait(task, outcome) and any(m.message.requires_response for m in said.messages)


def with_told(settlement: Settlement, said: Told) -> Settlement:
    """Pure: the run's messages and the replies it read, in its settlement's transaction; a run
    whose next attempt starts a new session keeps no reply read (the next one is given them)."""
    delivered = said.delivered if replies.keeps_what_it_read(settlement.agent) else []
    return replace(settlement, creates=(*settlement.creates, *said.messages, *delivered))


async def waiting(tools: Tools, end: RunEnd, outcome: AgentOutcome, said: Told, settlement: Settlement) -> Settlement:
    """The agent waits for the person's replies as for answers to its questions (its task stays
    IN_PROGRESS, no slot held); the messages are stored first, for their ids."""
    ctx = tools.ctx
    created = await tools.replies.create(end.agent, said.messages)
    questions = [*replies.message_questions(created), *outcome.questions]
    asked = dataclasses.replace(outcome, kind=OutcomeKind.QUESTIONS, questions=questions)
    settled = outcomes.settle(end.agent, end.task, asked, ctx.clock(), delays=ctx.settings.retry_delays)
    return replace(settled, creates=(*settlement.creates, *said.delivered))


async def write(tools: Tools, end: RunEnd, settlement: Settlement) -> None:
    """The settlement with what the run left said (leftovers.py), written in one transaction."""
    if end.left is not None:
        settlement = leftovers.flag(settlement, end.left[0], end.agent, end.left[1])
    await tools.agents.write(end.agent, end.task, settlement)


async def told_and_written(tools: Tools, end: RunEnd, outcome: AgentOutcome, settlement: Settlement) -> None:
    """The common end of a run: its messages and replies, waiting for the person's replies when one
    requires them, then the write."""
    said = await told(tools, end, outcome)
    if waits(end.task, outcome, said):
        await write(tools, end, await waiting(tools, end, outcome, said, settlement))
        return
    await write(tools, end, with_told(settlement, said))
