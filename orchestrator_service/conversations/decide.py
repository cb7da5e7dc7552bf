"""Pure decisions about conversations (an agent's question to another): whom a question is for,
what a pending conversation needs now, what the recipient's run answered, what the asker reads.

The facts are stored: the conversation (PENDING or ANSWERED, from and to whom), the asker's pending
question (its id is the conversation's), `conversation_id` on the recipient while its session is
resumed to answer, and the conversation's failed answer runs (`attempts`, `next_attempt_time`). Every
decision is taken again from them after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cw.store.v1 import agent_pb2, conversation_pb2, task_pb2
from orchestrator_service import outcomes
from orchestrator_service.agents.claude_outcome import clip
from orchestrator_service.cache.state import LIVE_AGENT
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind

QUESTION_BYTES = 16 * 1024
ANSWER_BYTES = 16 * 1024
CW_SAYS = "cw: "
# While the recipient's task has work under way, it answers after that run.
BUSY_TASK = (task_pb2.TASK_STATUS_PENDING, task_pb2.TASK_STATUS_IN_PROGRESS)


@dataclass(frozen=True)
class Ask:
    to: str
    question: str


def ask_of(outcome: AgentOutcome) -> Ask | None:
    """`{"status": "ask", "to": "AGENT_NAME or TASK_ID", "question": "..."}`; None when unusable."""
    to, question = outcome.report.get("to"), outcome.report.get("question")
    if not isinstance(to, str) or not to.strip() or not isinstance(question, str) or not question.strip():
        return None
    return Ask(to.strip()[:200], clip(question, QUESTION_BYTES))


def recipient(
    ask: Ask, asker: agent_pb2.Agent, named: agent_pb2.Agent | None, task_agents: Sequence[agent_pb2.Agent]
) -> tuple[agent_pb2.Agent | None, str]:
    """The agent to ask, or None and why nobody can answer. `named` is the agent called `ask.to`;
    `task_agents` the agents of the task whose id is `ask.to` (its newest run answers)."""
    found = named or (max(task_agents, key=lambda a: a.create_time.ToNanoseconds()) if task_agents else None)
    if found is None:
        return None, f"{CW_SAYS}no agent or task named {ask.to!r} can answer: nobody was asked"
    if found.id == asker.id:
        return None, f"{CW_SAYS}an agent cannot ask itself: nobody was asked"
    return found, ""


def waiting_question(conversation_id: str, ask: Ask) -> str:
    """The asker's pending questions while it waits: the conversation's id, so the answer is keyed
    by it (`CW_ANSWERS_FILE` holds `{"CONVERSATION_ID": "answer"}`) and `cw agent answer` works too."""
    return json.dumps([{"id": conversation_id, "question": ask.question, "to": ask.to}], ensure_ascii=False)


def asks_an_agent(agent: agent_pb2.Agent) -> set[str]:
    """The conversations an agent waits on (its pending questions addressed `to` an agent)."""
    try:
        questions = json.loads(agent.pending_questions or "[]")
    except ValueError:
        return set()
    if not isinstance(questions, list):
        return set()
    return {str(q["id"]) for q in questions if isinstance(q, dict) and q.get("to") and q.get("id")}


@dataclass(frozen=True)
class Next:
    """What a pending conversation needs: `resume` the recipient to answer, `answer` it with
    `text` (nobody else can), or `wait` (for the recipient's run, for the answer under way, or
    `after` seconds: the pause before the next answer run after a failed one)."""

    action: str
    text: str = ""
    after: float = 0.0


WAIT, RESUME, ANSWER = "wait", "resume", "answer"


def next_step(
    conversation: conversation_pb2.Conversation,
    asker: agent_pb2.Agent | None,
    answerer: agent_pb2.Agent | None,
    answerer_task: task_pb2.Task | None,
    others_live_on_task: bool,
    *,
    now: datetime | None = None,
) -> Next:
    if asker is None or asker.status not in LIVE_AGENT:
        return Next(ANSWER, f"{CW_SAYS}the agent that asked no longer waits for an answer")
    if answerer is None:
        return Next(ANSWER, f"{CW_SAYS}the agent asked is gone")
    name = answerer.name
    if answerer.conversation_id == conversation.id:
        if answerer.status == agent_pb2.AGENT_STATUS_RUNNING:
            return Next(WAIT)
        why = f": {answerer.error}" if answerer.error else ""
        return Next(ANSWER, f"{CW_SAYS}{name} stopped before it answered{why}")
    if answerer.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
        return Next(ANSWER, f"{CW_SAYS}{name} is waiting for answers itself and cannot answer now")
    if answerer.status == agent_pb2.AGENT_STATUS_RUNNING:
        return Next(WAIT)  # after its current run
    if others_live_on_task or (answerer_task is not None and answerer_task.status in BUSY_TASK):
        return Next(WAIT)  # its task is being worked on: after that run
    pause = _pause(conversation, now)
    if pause > 0:
        return Next(WAIT, after=pause)  # a failed answer run is retried after the tasks' delay
    return Next(RESUME)


def _pause(conversation: conversation_pb2.Conversation, now: datetime | None) -> float:
    if now is None or not conversation.HasField("next_attempt_time"):
        return 0.0
    due = conversation.next_attempt_time.ToDatetime(tzinfo=UTC)
    return max((due - now).total_seconds(), 0.0)


@dataclass(frozen=True)
class AnswerRetry:
    """After a failed answer run: the conversation's failed runs so far, and when the next may
    start; `next_attempt_time` None means none may: cw answers `text` instead."""

    attempts: int
    next_attempt_time: datetime | None
    text: str = ""


def after_failed_answer(
    conversation: conversation_pb2.Conversation, why: str, now: datetime, delays: Sequence[float]
) -> AnswerRetry:
    """A failed answer run is retried as a failed task run is (outcomes.after_failure: the same
    attempts and delays); after the last one the asker is told why there is no answer."""
    decision = outcomes.after_failure(conversation.attempts, now, delays)
    if decision.status == task_pb2.TASK_STATUS_PENDING:
        return AnswerRetry(decision.retry_count, decision.next_attempt_time)
    runs = conversation.attempts + 1
    return AnswerRetry(runs, None, f"{why} ({runs} attempts)")


INSTEAD = {OutcomeKind.QUESTIONS: "it asked questions instead", OutcomeKind.ASK: "it asked another agent instead"}


def answer_of(outcome: AgentOutcome, name: str) -> tuple[str, bool]:
    """What the recipient's discuss run answered, and whether it did: its `answer`, or (a CLI that
    wrote no signal file) its final words; otherwise cw says why there is no answer."""
    if outcome.kind == OutcomeKind.ANSWER:
        said = outcome.report.get("answer")
        if isinstance(said, str) and said.strip():
            return clip(said, ANSWER_BYTES), True
    if outcome.kind == OutcomeKind.DONE and outcome.summary.strip():
        return clip(outcome.summary, ANSWER_BYTES), True
    why = outcome.error or INSTEAD.get(outcome.kind, f"it ended with {outcome.kind}")
    return f"{CW_SAYS}{name} could not answer: {clip(why, ANSWER_BYTES)}", False


@dataclass(frozen=True)
class OwnWork:
    """What the answering agent did, for its prompt: a stateless agent knows nothing else of it."""

    task: task_pb2.Task | None
    # Project name -> the files its task's branch changed.
    changed: Mapping[str, Sequence[str]]


# How much of a task's description an answer prompt quotes.
DESCRIPTION_BYTES = 4000


def discuss_prompt(asker_name: str, asker_task: task_pb2.Task | None, question: str, own: OwnWork | None = None) -> str:
    """What the recipient reads when resumed: the question with the asker's task, its own task,
    summary and changed files, and how to answer."""
    about = f" (working on task {asker_task.name!r})" if asker_task else ""
    lines = [f"# A question from agent {asker_name}{about}", "", question]
    if asker_task is not None and asker_task.description:
        lines += ["", "## The asker's task", "", clip(asker_task.description, DESCRIPTION_BYTES)]
    if own is not None and own.task is not None:
        lines += ["", f"## Your task: {own.task.name} ({own.task.id})", ""]
        lines.append(clip(own.task.description, DESCRIPTION_BYTES) or "(no description)")
        if own.task.summary:
            lines += ["", f"What you reported: {own.task.summary}"]
    if own is not None and any(own.changed.values()):
        lines += ["", "## The files your work changed (paths in each project)"]
        lines += [f"- {project}: {', '.join(files)}" for project, files in own.changed.items() if files]
    lines += [
        "",
        "## How to answer",
        "Answer from what you know of your own work (your working directory holds it); change nothing. Write "
        '{"status": "answer", "answer": "..."} to the file named by $CW_SIGNAL_FILE.',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AnswerStart:
    """A recipient resumed to answer a conversation: what its run is started with (runs/answer.py)."""

    conversation: conversation_pb2.Conversation
    asker_name: str
    asker_task: task_pb2.Task | None
    own: OwnWork
