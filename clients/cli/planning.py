"""`cw page`, `cw plan`, `cw discuss`, `cw phase detail`, `cw proposals`: planning with agents.

A shortcut creates the planning task (outside any phase) and runs it at once (DispatchTask), then
waits for its agent: done (its proposals are shown), waiting for answers (its questions), or
blocked (why). Proposals are accepted or dismissed by id, or all of an initiative at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import click
import grpc
from rich.markdown import Markdown
from rich.markup import escape

from clients.cli.app import CwCommand, CwGroup, Session, console, errors, pass_session
from clients.cli.planning_views import Existing, page_tree, proposal_detail, proposals_tree
from clients.sdk.calls import enum_name
from clients.sdk.errors import FailedPreconditionError
from cw.store.v1 import agent_pb2, proposal_pb2, task_pb2

WAIT_HELP = "return at once instead of waiting for the agent"
POLL_SECONDS = 0.3
DONE = (task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_BLOCKED)


def existing_rows(session: Session, initiative_id: str) -> dict[str, Existing]:
    """Every page, phase and task of the initiative by id: what proposals name and change."""
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
        console().print(f"[bold]{escape(task.summary or 'done')}[/]")
        console().print(proposals_tree(proposals, existing))
        if proposals:
            console().print(f"accept them: cw proposals accept --initiative {initiative_id}")

    session.show({"task": task, "proposals": proposals}, render)


FAILED_OUTCOMES = (
    agent_pb2.AGENT_OUTCOME_FAILED,
    agent_pb2.AGENT_OUTCOME_CRASHED,
    agent_pb2.AGENT_OUTCOME_NEVER_STARTED,
)


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
            if agent.outcome not in FAILED_OUTCOMES or not agent.error or (agent.id, agent.error) in self.told:
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
        if task.status in DONE or (latest is not None and latest.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT):
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


def _initiative(session: Session, initiative_id: str) -> tuple[str, str, str]:
    found = session.store.get_initiative(initiative_id)
    session.store.root_page(found.id)  # what the agent reads, and where decisions go
    return found.id, found.name, ""


def _phase(session: Session, phase_id: str) -> tuple[str, str, str]:
    found = session.store.get_phase(phase_id)
    return found.initiative_id, found.name, found.id


def _page(session: Session, page_id: str) -> tuple[str, str, str]:
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


plan = shortcut("plan", "plan", "INITIATIVE", _initiative, "An agent reads the initiative's pages and proposes phases.")
discuss = shortcut(
    "discuss", "discuss", "INITIATIVE", _initiative, "An agent asks you questions, then proposes page edits."
)
phase_detail = shortcut(
    "detail", "detail", "PHASE", _phase, "An agent proposes the phase's tasks, with their dependencies."
)


# ---- pages ------------------------------------------------------------------------------------


@click.group(cls=CwGroup)
def page() -> None:
    """Pages: an initiative's living spec, a tree of markdown documents under its root page."""


@page.command("tree")
@click.argument("initiative_id")
@pass_session
def page_tree_command(session: Session, initiative_id: str) -> None:
    session.store.root_page(initiative_id)
    pages = session.store.list_pages(initiative_id)
    session.show(pages, lambda: console().print(page_tree(pages)))


@page.command("show")
@click.argument("page_id")
@pass_session
def page_show(session: Session, page_id: str) -> None:
    found = session.store.get_page(page_id)

    def render() -> None:
        console().print(f"[bold]{escape(found.title)}[/] [dim]{found.id}[/]")
        if console().is_terminal:
            console().print(Markdown(found.content or "(empty)"))
        else:
            click.echo(found.content, nl=False)

    session.show(found, render)


def _text_of(file: Path | None, current: str) -> str | None:
    """The file's text, or what the person wrote in $EDITOR (None: left unchanged)."""
    if file is not None:
        return file.read_text()
    return click.edit(current, extension=".md")


@page.command("edit")
@click.argument("page_id")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="markdown to store")
@pass_session
def page_edit(session: Session, page_id: str, file: Path | None) -> None:
    """Replace the page's content with a file's, or edit it in $EDITOR."""
    found = session.store.get_page(page_id)
    content = _text_of(file, found.content)
    if content is None or content == found.content:
        session.show(found, lambda: console().print("unchanged"))
        return
    updated = session.store.set_page_content(found.id, content)
    session.show(updated, lambda: console().print(f"page {escape(updated.title)} saved"))


@page.command("add")
@click.argument("initiative_id")
@click.argument("title")
@click.option("--parent", default="", help="the page it goes under (default: the root page)")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="its markdown")
@pass_session
def page_add(session: Session, initiative_id: str, title: str, parent: str, file: Path | None) -> None:
    content = file.read_text() if file is not None else ""
    created = session.store.create_page(initiative_id, title, content, parent)
    session.show(created, lambda: console().print(f"page {escape(created.title)} [dim]{created.id}[/]"))


page.add_command(shortcut("refine", "refine", "PAGE", _page, "An agent proposes an edit of the page (a diff)."))


# ---- proposals --------------------------------------------------------------------------------


@click.group(cls=CwGroup)
def proposals() -> None:
    """What planning agents proposed: a tree of phases and tasks, page edits as diffs."""


@proposals.command("list")
@click.argument("initiative_id")
@click.option("--all", "every", is_flag=True, help="accepted and dismissed ones too")
@pass_session
def proposals_list(session: Session, initiative_id: str, every: bool) -> None:
    found = session.store.list_proposals(initiative_id, "" if every else "pending")
    existing = existing_rows(session, initiative_id)
    session.show(found, lambda: console().print(proposals_tree(found, existing)))


@proposals.command("show")
@click.argument("proposal_id")
@pass_session
def proposals_show(session: Session, proposal_id: str) -> None:
    found = session.store.get_proposal(proposal_id)
    existing = existing_rows(session, found.initiative_id)
    session.show(found, lambda: console().print(proposal_detail(found, existing)))


def choosing(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """`cw proposals NAME [ID...] [--initiative ID]`: a verb about some proposals."""

    def decorate(function: Callable[..., None]) -> click.Command:
        every = click.option("--initiative", "initiative_id", default="", help="every pending one of this initiative")
        return proposals.command(name)(click.argument("proposal_ids", nargs=-1)(every(pass_session(function))))

    return decorate


def _chosen(session: Session, ids: tuple[str, ...], initiative_id: str) -> list[str]:
    if ids:
        return list(ids)
    if not initiative_id:
        raise click.UsageError("name proposals, or --initiative ID for all its pending ones")
    return [proposal.id for proposal in session.store.list_proposals(initiative_id, "pending")]


@choosing("accept")
def proposals_accept(session: Session, proposal_ids: tuple[str, ...], initiative_id: str) -> None:
    """Apply proposals as one change set (undone by `cw proposals revert CHANGE_SET`)."""
    chosen = _chosen(session, proposal_ids, initiative_id)
    if not chosen:
        session.show({"proposals": []}, lambda: console().print("no pending proposals"))
        return
    accepted = session.store.accept_proposals(chosen)

    def render() -> None:
        console().print(f"accepted {len(accepted.proposals)} as change set [dim]{accepted.change_set_id}[/]")
        for proposal in accepted.proposals:
            kind = enum_name(proposal_pb2.ProposalTargetType, proposal.target_type)
            console().print(f"  {kind} {escape(proposal.title)} [dim]{proposal.entity_id}[/]")

    session.show(accepted, render)


@choosing("dismiss")
def proposals_dismiss(session: Session, proposal_ids: tuple[str, ...], initiative_id: str) -> None:
    chosen = _chosen(session, proposal_ids, initiative_id)
    dismissed = session.store.dismiss_proposals(chosen) if chosen else None
    count = len(dismissed.proposals) if dismissed is not None else 0
    session.show(dismissed or {"proposals": []}, lambda: console().print(f"dismissed {count}"))


@proposals.command("revert")
@click.argument("change_set_id")
@pass_session
def proposals_revert(session: Session, change_set_id: str) -> None:
    """Undo an accepted batch: what it made goes, what it changed comes back; its proposals are
    pending again. Refused when something changed since."""
    reverted = session.store.revert_change_set(change_set_id)
    session.show(reverted, lambda: console().print(f"reverted {len(reverted.entries)} changes"))
