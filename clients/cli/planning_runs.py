"""Planning with agents, as `cw plan`, `cw discuss`, `cw phase detail` and `cw page refine` run it
(each is a `shortcut`): the planning task is created (outside any phase) and run at once
(DispatchTask), then its agent is waited for: done (its proposals are shown), waiting for answers
(its questions), or blocked (why). `cw chat` waits for its replies with the same `Attempts`.

Importing this module imports neither rich nor the planning views: each is imported when first used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING

import click
import grpc

from clients.cli.app import CwCommand, Session, console, errors, pass_session
from clients.cli.views import escape
from clients.sdk.calls import enum_name
from clients.sdk.errors import FailedPreconditionError
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from clients.cli.planning_views import Existing
    from cw.store.v1 import agent_pb2, task_pb2
else:
    agent_pb2, task_pb2 = lazy_modules("cw.store.v1", "agent_pb2", "task_pb2")

WAIT_HELP = "return at once instead of waiting for the agent"
POLL_SECONDS = 0.3


def existing_rows(session: Session, initiative_id: str) -> dict[str, Existing]:
    """Every page, phase and task of the initiative by id: what proposals name and change."""
    from clients.cli.planning_views import Existing

    store = session.store
    rows = {page.id: Existing(page.title, page.content) for page in store.list_pages(initiative_id)}
    rows |= {phase.id: Existing(phase.name, phase.content) for phase in store.list_phases(initiative_id)}
    rows |= {task.id: Existing(task.name, task.description) for task in store.list_tasks(initiative_id=initiative_id)}
    return rows


def run_planning(session: Session, task: task_pb2.Task, *, wait: bool) -> None:
    """Dispatches a new planning task and (unless told not to) follows its agent."""
    task = session.orchestrator.dispatch_task(task.id)
    initiative_id = task.initiative_id
    category = enum_name(task_pb2.TaskCategory, task.category)
    if not wait:
        session.show(task, lambda: console().print(f"{category} task {escape(task.name)} [dim]{task.id}[/] queued"))
        return
    if not session.as_json:
        console().print(f"{category} task {escape(task.name)} [dim]{task.id}[/]: waiting for its agent...")
    task, agent = wait_for_run(session, task.id)
    if task.status == task_pb2.TASK_STATUS_BLOCKED:
        raise FailedPreconditionError(grpc.StatusCode.FAILED_PRECONDITION, f"the planning run failed: {task.reason}")
    if agent is not None and agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
        show_questions(session, task, agent)
        return
    proposals = session.store.list_proposals(agent_id=agent.id) if agent is not None else []
    existing = existing_rows(session, initiative_id)

    def render() -> None:
        from clients.cli.planning_views import proposals_tree

        console().print(f"[bold]{escape(task.summary or 'done')}[/]")
        console().print(proposals_tree(proposals, existing))
        if proposals:
            console().print(f"accept them: cw proposals accept --initiative {initiative_id}")

    session.show({"task": task, "proposals": proposals}, render)


def _failed(agent: agent_pb2.Agent) -> bool:
    failed = (agent_pb2.AGENT_OUTCOME_FAILED, agent_pb2.AGENT_OUTCOME_CRASHED, agent_pb2.AGENT_OUTCOME_NEVER_STARTED)
    return agent.outcome in failed


@dataclass
class Attempts:
    """What a person waiting for a run has been told of its failed attempts: each one as it
    happens, on stderr (stdout keeps the answer), not only the last one's error minutes later.
    An attempt is an agent of the task (one per attempt; a resumed one keeps its agent), told once
    per error it ended with."""

    told: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def since(cls, agents: list[agent_pb2.Agent]) -> Attempts:
        """Only what fails from now on: what these agents ended with is old news."""
        return cls({(agent.id, agent.error) for agent in agents})

    def news(self, task: task_pb2.Task, agents: list[agent_pb2.Agent]) -> list[str]:
        """The lines to show since the last call (pure but for what it remembers)."""
        lines = []
        ordered = sorted(agents, key=lambda agent: agent.create_time.ToNanoseconds())
        for number, agent in enumerate(ordered, start=1):
            if not _failed(agent) or not agent.error or (agent.id, agent.error) in self.told:
                continue
            self.told.add((agent.id, agent.error))
            why = agent.error.strip().splitlines()[0]
            lines.append(f"attempt {number} (agent {agent.name}) failed: {why}")
        if lines and task.status == task_pb2.TASK_STATUS_BLOCKED:
            lines[-1] += " - no attempt left"
        elif lines and task.HasField("next_attempt_time"):
            at = task.next_attempt_time.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")
            lines[-1] += f" - next attempt at {at}"
        return lines

    def tell(self, task: task_pb2.Task, agents: list[agent_pb2.Agent]) -> None:
        for line in self.news(task, agents):
            errors().print(f"cw: {escape(line)}", soft_wrap=True)


def wait_for_run(session: Session, task_id: str) -> tuple[task_pb2.Task, agent_pb2.Agent | None]:
    """Until the task is done or blocked, or its agent waits for answers; each failed attempt told."""
    attempts = Attempts()
    while True:
        task = session.store.get_task(task_id)
        agents = session.store.list_agents(task_id=task_id)
        attempts.tell(task, agents)
        latest = agents[-1] if agents else None
        done = task.status in (task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_BLOCKED)
        if done or (latest is not None and latest.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT):
            return task, latest
        time.sleep(POLL_SECONDS)


def show_questions(session: Session, task: task_pb2.Task, agent: agent_pb2.Agent) -> None:
    questions = json.loads(agent.pending_questions or "[]")

    def render() -> None:
        console().print(f"agent {agent.name} asks:")
        for question in questions:
            console().print(f"  {escape(str(question.get('id')))}: {escape(str(question.get('question')))}")
        console().print(f"answer: cw agent answer {agent.name} --answer ID=TEXT ...")

    session.show({"task": task, "agent": agent}, render)


wait_option = click.option("--no-wait", "no_wait", is_flag=True, help=WAIT_HELP)
instructions_option = click.option("--instructions", default="", help="what you want, in your words")


Subject = Callable[[Session, str], tuple[str, str, str]]


def initiative_subject(session: Session, initiative_id: str) -> tuple[str, str, str]:
    found = session.store.get_initiative(initiative_id)
    session.store.root_page(found.id)  # what the agent reads, and where decisions go
    return found.id, found.name, ""


def phase_subject(session: Session, phase_id: str) -> tuple[str, str, str]:
    found = session.store.get_phase(phase_id)
    return found.initiative_id, found.name, found.id


def page_subject(session: Session, page_id: str) -> tuple[str, str, str]:
    found = session.store.get_page(page_id)
    return found.initiative_id, found.title, found.id


def shortcut(name: str, category: str, argument: str, subject: Subject, help_text: str) -> click.Command:
    """`cw plan INITIATIVE` and the like: `subject` gives the initiative, a name and the target."""

    @click.command(name, cls=CwCommand, help=help_text)
    @click.argument("subject_id", metavar=argument)
    @instructions_option
    @wait_option
    @pass_session
    def run(session: Session, subject_id: str, instructions: str, no_wait: bool) -> None:
        initiative_id, title, target_id = subject(session, subject_id)
        task_name = f"{category.capitalize()} {title}"
        task = session.store.create_planning_task(initiative_id, category, task_name, instructions, target_id)
        run_planning(session, task, wait=not no_wait)

    return run
