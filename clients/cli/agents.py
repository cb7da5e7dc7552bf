"""`cw agent` and `cw account`: the processes doing the work and the accounts they use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import age, agent_state, short, styled, table
from clients.sdk.calls import enum_name
from cw.store.v1 import agent_pb2

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
        console.print(grid)

    session.show(agents, render)


@agent.command("show")
@click.argument("agent_id", metavar=AGENT_ARGUMENT)
@pass_session
def agent_show(session: Session, agent_id: str) -> None:
    """One agent (by id or name): its task, how its run ended, its error and exit code."""
    found = session.store.resolve_agent(agent_id)
    session.show(found, lambda: console.print(agent_view(found)))


def agent_view(found: agent_pb2.Agent) -> Table:
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
    session.show(stopped, lambda: console.print(f"agent {escape(stopped.name)} stopped"))


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
    session.show(resumed, lambda: console.print(f"agent {escape(resumed.name)} resumed"))


MAX_AGENTS_HELP = "at most this many agents use it at once (0: no cap)"


@click.group(cls=CwGroup)
def account() -> None:
    """Provider accounts, used round-robin. Credentials are stored, never printed."""


@account.command("add")
@click.argument("email")
@click.option("--provider", default="claude", show_default=True)
@click.option("--credentials-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--config-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-agents", type=click.IntRange(min=0), default=0, help=MAX_AGENTS_HELP)
@pass_session
def account_add(
    session: Session, email: str, provider: str, credentials_file: Path, *, config_file: Path | None, max_agents: int
) -> None:
    created = session.store.create_account(
        email, provider, credentials_file.read_text(), config_file.read_text() if config_file else "", max_agents
    )
    session.show(created, lambda: console.print(f"account {created.email} ({created.provider}) [dim]{created.id}[/]"))


@account.command("update")
@click.argument("account_id")
@click.option("--credentials-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-agents", type=click.IntRange(min=0), help=MAX_AGENTS_HELP)
@pass_session
def account_update(
    session: Session, account_id: str, credentials_file: Path | None, config_file: Path | None, max_agents: int | None
) -> None:
    """New credentials for an account (one whose credential was refused is usable again), and/or
    its cap on agents at once."""
    if credentials_file is None and max_agents is None:
        raise click.UsageError("nothing to change: give --credentials-file and/or --max-agents")
    if credentials_file is None and config_file is not None:
        raise click.UsageError("--config-file goes with --credentials-file")
    updated = None
    if credentials_file is not None:
        updated = session.store.update_account_credentials(
            account_id, credentials_file.read_text(), config_file.read_text() if config_file else ""
        )
    if max_agents is not None:
        updated = session.store.set_account_cap(account_id, max_agents)
    assert updated is not None
    session.show(updated, lambda: console.print(f"account {updated.email} ({updated.provider}) updated"))


@account.command("list")
@pass_session
def account_list(session: Session) -> None:
    accounts = session.store.list_accounts()

    def render() -> None:
        grid = table("ID", "EMAIL", "PROVIDER", "EXHAUSTED", "MAX AGENTS", "CREDENTIALS", "UNUSABLE")
        for a in accounts:
            # The store says EXHAUSTED as of now: a rest whose time passed shows "no".
            exhausted = "yes" if a.is_exhausted else "no"
            grid.add_row(
                a.id,
                a.email,
                a.provider,
                exhausted,
                str(a.max_concurrent_agents) if a.max_concurrent_agents else "-",
                "stored" if a.has_credentials else "none",
                escape(a.unusable_reason) if a.unusable_reason else "",
            )
        console.print(grid)

    session.show(accounts, render)
