"""`cw agent` and `cw account`: the processes doing the work and the accounts they use."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.work import styled, table
from clients.sdk.calls import enum_name
from cw.store.v1 import agent_pb2

AGENT_STATUSES = ["", "idle", "running", "waiting_for_input", "stopped", "crashed"]


def age(agent: agent_pb2.Agent) -> str:
    seconds = int(datetime.now(UTC).timestamp() - agent.create_time.seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@click.group(cls=CwGroup)
def agent() -> None:
    """Agents: provider processes working on tasks."""


@agent.command("list")
@click.option("--status", default="", type=click.Choice(AGENT_STATUSES), help="only this status")
@pass_session
def agent_list(session: Session, status: str) -> None:
    agents = session.store.list_agents(status=status)

    def render() -> None:
        grid = table("ID", "NAME", "STATUS", "TASK", "PROVIDER", "AGE")
        for a in agents:
            grid.add_row(
                a.id, a.name, styled(enum_name(agent_pb2.AgentStatus, a.status)), a.task_id, a.provider, age(a)
            )
        console.print(grid)

    session.show(agents, render)


@agent.command("logs")
@click.argument("agent_id")
@click.option("-f", "--follow", is_flag=True, help="keep printing while the agent runs")
@pass_session
def agent_logs(session: Session, agent_id: str, follow: bool) -> None:
    """The agent's raw output (stream-json for Claude Code)."""
    for data in session.orchestrator.agent_output(agent_id, follow):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@agent.command("stop")
@click.argument("agent_id")
@pass_session
def agent_stop(session: Session, agent_id: str) -> None:
    """End the agent's processes; its task is blocked until retried."""
    stopped = session.orchestrator.stop_agent(agent_id)
    session.show(stopped, lambda: console.print(f"agent {stopped.name} stopped"))


@agent.command("answer")
@click.argument("agent_id")
@click.option("--answer", "given", multiple=True, metavar="QID=TEXT", help="answer without asking (repeatable)")
@pass_session
def agent_answer(session: Session, agent_id: str, given: tuple[str, ...]) -> None:
    """Answer a waiting agent's questions (asked one by one at the prompt, or given with --answer)."""
    waiting = session.store.get_agent(agent_id)
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
    resumed = session.orchestrator.answer_questions(agent_id, answers)
    session.show(resumed, lambda: console.print(f"agent {resumed.name} resumed"))


@click.group(cls=CwGroup)
def account() -> None:
    """Provider accounts, used round-robin. Credentials are stored, never printed."""


@account.command("add")
@click.argument("email")
@click.option("--provider", default="claude", show_default=True)
@click.option("--credentials-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--config-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_session
def account_add(session: Session, email: str, provider: str, credentials_file: Path, config_file: Path | None) -> None:
    created = session.store.create_account(
        email, provider, credentials_file.read_text(), config_file.read_text() if config_file else ""
    )
    session.show(created, lambda: console.print(f"account {created.email} ({created.provider}) [dim]{created.id}[/]"))


@account.command("list")
@pass_session
def account_list(session: Session) -> None:
    accounts = session.store.list_accounts()

    def render() -> None:
        grid = table("ID", "EMAIL", "PROVIDER", "EXHAUSTED", "CREDENTIALS")
        for a in accounts:
            exhausted = "yes" if a.is_exhausted else "no"
            grid.add_row(a.id, a.email, a.provider, exhausted, "stored" if a.has_credentials else "none")
        console.print(grid)

    session.show(accounts, render)
