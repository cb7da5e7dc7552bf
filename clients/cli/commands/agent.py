"""`cw agent`: the provider processes doing the work, by id or by name (`tidy-jackal`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import age, agent_state, escape, short, styled, table
from clients.sdk.calls import enum_name
from cw.store.v1 import agent_pb2

if TYPE_CHECKING:
    from rich.table import Table

AGENT_STATUSES = ["", "idle", "running", "waiting_for_input", "stopped", "crashed"]
AGENT_ARGUMENT = "AGENT"  # an agent's id or its name (`tidy-jackal`)


@click.group(cls=CwGroup)
def agent() -> None:
    """Agents: provider processes working on tasks."""


@agent.command("list")
@click.option("--status", default="", type=click.Choice(AGENT_STATUSES), help="only this status")
@pass_session
def agent_list(session: Session, status: str) -> None:
    """Agents, and for each that ended, how: done, failed, crashed, stopped by you, rate limited."""
    agents = session.store.list_agents(status=status)

    def render() -> None:
        grid = table("ID", "NAME", "STATE", "TASK", "PROVIDER", "AGE")
        for a in agents:
            grid.add_row(a.id, a.name, styled(agent_state(a)), a.task_id, a.provider, age(a.create_time))
        console().print(grid)

    session.show(agents, render)


@agent.command("show")
@click.argument("agent_id", metavar=AGENT_ARGUMENT)
@pass_session
def agent_show(session: Session, agent_id: str) -> None:
    """One agent (by id or name): its task, how its run ended, its error and exit code."""
    found = session.store.resolve_agent(agent_id)
    session.show(found, lambda: console().print(agent_view(found)))


def agent_view(found: agent_pb2.Agent) -> Table:
    from rich.table import Table
    from rich.text import Text

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("agent", f"{escape(found.name)} {styled(agent_state(found))} [dim]{found.id}[/]")
    facts.add_row("status", enum_name(agent_pb2.AgentStatus, found.status))
    facts.add_row("task", found.task_id)
    facts.add_row("mode", enum_name(agent_pb2.AgentMode, found.mode))
    facts.add_row("provider", escape(found.provider))
    facts.add_row("age", age(found.create_time))
    if found.HasField("exit_code"):
        facts.add_row("exit code", str(found.exit_code))
    if found.error:
        facts.add_row("error", Text(found.error))
    if found.pending_questions:
        facts.add_row("questions", escape(short(found.pending_questions, 200)))
    if found.worktree_id:
        facts.add_row("directory", escape(found.worktree_id))
    return facts


@agent.command("logs")
@click.argument("agent_id", metavar=AGENT_ARGUMENT)
@click.option("-f", "--follow", is_flag=True, help="keep printing while the agent runs")
@pass_session
def agent_logs(session: Session, agent_id: str, follow: bool) -> None:
    """The agent's raw output (stream-json for Claude Code), by id or name."""
    found = session.store.resolve_agent(agent_id)
    for data in session.orchestrator.agent_output(found.id, follow):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@agent.command("stop")
@click.argument("agent_id", metavar=AGENT_ARGUMENT)
@pass_session
def agent_stop(session: Session, agent_id: str) -> None:
    """End the agent's processes (by id or name); its task is blocked until retried."""
    stopped = session.orchestrator.stop_agent(session.store.resolve_agent(agent_id).id)
    session.show(stopped, lambda: console().print(f"agent {escape(stopped.name)} stopped"))


@agent.command("answer")
@click.argument("agent_id", metavar=AGENT_ARGUMENT)
@click.option("--answer", "given", multiple=True, metavar="QID=TEXT", help="answer without asking (repeatable)")
@pass_session
def agent_answer(session: Session, agent_id: str, given: tuple[str, ...]) -> None:
    """Answer a waiting agent's questions (asked one by one at the prompt, or given with --answer)."""
    waiting = session.store.resolve_agent(agent_id)
    questions = json.loads(waiting.pending_questions or "[]")
    answers = {}
    for item in given:
        qid, separator, text = item.partition("=")
        if not separator:
            raise click.BadParameter(f"wants QID=TEXT, got {item!r}", param_hint="--answer")
        answers[qid] = text
    if not given:
        for question in questions:
            answers[str(question.get("id"))] = click.prompt(str(question.get("question") or question.get("id")))
    resumed = session.orchestrator.answer_questions(waiting.id, answers)
    session.show(resumed, lambda: console().print(f"agent {escape(resumed.name)} resumed"))
