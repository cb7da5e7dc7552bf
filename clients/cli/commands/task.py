"""`cw task`: one agent's piece of work, and everything about why it is where it is.

The store refuses an edit, a move or a delete while a live agent works on the task
(FAILED_PRECONDITION, AGENT_WORKING), and a task for a merged phase unless it is reopened (`--reopen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import agent_state, budget_line, clock, escape, last_lines, short, styled, table, usage_line
from clients.sdk import CwError
from clients.sdk.calls import enum_name
from clients.sdk.lazy import lazy_modules
from cw.store.v1 import task_pb2

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from cw.store.v1 import agent_pb2
else:
    (agent_pb2,) = lazy_modules("cw.store.v1", "agent_pb2")

OUTPUT_LINES = 10
CATEGORIES = ["execute", "research", "discuss", "plan", "detail", "refine", "verify", "merge", "review"]


@click.group(cls=CwGroup)
def task() -> None:
    """Tasks: one agent's piece of work."""


@task.command("add")
@click.argument("phase_id")
@click.argument("name")
@click.option("--description", default="", help="what the agent should do")
@click.option("--after", multiple=True, help="a task this one waits for (repeatable; a bad one creates nothing)")
@click.option("--priority", default="medium", type=click.Choice(["low", "medium", "high"]), show_default=True)
@click.option(
    "--category",
    default="execute",
    type=click.Choice(CATEGORIES),
    show_default=True,
)
@click.option("--reopen", is_flag=True, help="the phase is merged: reopen it (it runs and is reviewed again)")
@click.option("--provider", default="", help="the provider its runs use (default: its initiative's, else the default)")
@pass_session
def task_add(
    session: Session,
    phase_id: str,
    name: str,
    *,
    description: str,
    after: tuple[str, ...],
    priority: str,
    category: str,
    reopen: bool,
    provider: str,
) -> None:
    created = session.store.create_task(
        phase_id,
        name,
        description=description,
        after=list(after),
        priority=priority,
        category=category,
        reopen=reopen,
        provider=provider,
    )
    session.show(created, lambda: console().print(f"task {escape(created.name)} [dim]{created.id}[/]"))


@task.command("list")
@click.option("--phase", "phase_id", default="", help="only the tasks of this phase")
@click.option(
    "--status",
    default="",
    type=click.Choice(["", "pending", "in_progress", "completed", "blocked"]),
    help="only this status",
)
@pass_session
def task_list(session: Session, phase_id: str, status: str) -> None:
    """Tasks with their status and, for a blocked or waiting one, why (`cw task show ID` says more)."""
    tasks = session.store.list_tasks(phase_id=phase_id, status=status)
    session.show(tasks, lambda: console().print(tasks_table(tasks)))


def tasks_table(tasks: list[task_pb2.Task]) -> Table:
    grid = table("ID", "NAME", "STATUS", "PRIORITY", "RETRIES", "PHASE", "REASON")
    for t in tasks:
        grid.add_row(
            t.id,
            escape(t.name),
            styled(enum_name(task_pb2.TaskStatus, t.status)),
            enum_name(task_pb2.TaskPriority, t.priority),
            str(t.retry_count),
            t.phase_id,
            escape(short(t.reason)),
        )
    return grid


@dataclass
class TaskDetails:
    """One task with what surrounds it, as `cw task show` gathers it."""

    task: task_pb2.Task
    depends_on: list[task_pb2.Task] = field(default_factory=list)
    dependents: list[task_pb2.Task] = field(default_factory=list)
    agents: list[agent_pb2.Agent] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    output_note: str = ""


@task.command("show")
@click.argument("task_id")
@pass_session
def task_show(session: Session, task_id: str) -> None:
    """Everything about one task: status, why it is blocked, retries, what it waits for and what
    waits for it, its agents and how each run ended, the last lines of the latest agent's output."""
    details = _gather(session, task_id)
    shown = {
        "task": details.task,
        "dependsOn": details.depends_on,
        "dependents": details.dependents,
        "agents": details.agents,
        "output": details.output,
        "usage": task_usage(details.agents),
    }
    session.show(shown, lambda: console().print(task_view(details)))


def _gather(session: Session, task_id: str) -> TaskDetails:
    found = session.store.get_task(task_id)
    edges = session.store.task_dependencies(task_id=found.id)
    details = TaskDetails(
        found,
        depends_on=[session.store.get_task(e.depends_on_task_id) for e in edges if e.task_id == found.id],
        dependents=[session.store.get_task(e.task_id) for e in edges if e.depends_on_task_id == found.id],
        agents=sorted(session.store.list_agents(task_id=found.id), key=lambda a: a.create_time.ToNanoseconds()),
    )
    if details.agents:
        latest = details.agents[-1]
        try:
            details.output = last_lines(b"".join(session.orchestrator.agent_output(latest.id)), OUTPUT_LINES)
            details.output_note = f"last output of agent {latest.name}"
        except CwError as error:
            details.output_note = f"output of agent {latest.name} not available: {error.message}"
    return details


def task_view(details: TaskDetails) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    found = details.task
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    status = enum_name(task_pb2.TaskStatus, found.status)
    facts.add_row("task", f"{escape(found.name)} {styled(status)} [dim]{found.id}[/]")
    facts.add_row("phase", found.phase_id or "(none)")
    default = "[dim](its initiative's, else the default)[/]"
    facts.add_row("provider", escape(found.provider) if found.provider else default)
    if found.reason:
        facts.add_row("reason", Text(found.reason))
    facts.add_row("retries", str(found.retry_count))
    used = task_usage(details.agents)
    facts.add_row("usage", usage_line(used))
    tokens = found.budget_tokens if found.HasField("budget_tokens") else None
    usd = found.budget_usd if found.HasField("budget_usd") else None
    if tokens is not None or usd is not None:
        facts.add_row("budget", budget_line(budget_tokens_of(used), used.cost_usd, tokens, usd))
    for label, stamp in (("next attempt", found.next_attempt_time), ("merged", found.merge_time)):
        if stamp.seconds:
            facts.add_row(label, clock(stamp))
    facts.add_row("waits for", _task_names(details.depends_on))
    facts.add_row("needed by", _task_names(details.dependents))
    parts: list[RenderableType] = [facts]
    if details.agents:
        runs = table("AGENT", "STATE", "EXIT", "ERROR", "TOKENS", "COST USD", "PROVIDER")
        for agent in details.agents:
            exit_code = str(agent.exit_code) if agent.HasField("exit_code") else ""
            tokens_used, cost = f"{budget_tokens_of(agent.usage):,}", f"{agent.usage.cost_usd:,.4f}"
            runs.add_row(
                escape(agent.name),
                styled(agent_state(agent)),
                exit_code,
                escape(short(agent.error)),
                tokens_used,
                cost,
                escape(agent.provider),
            )
        parts += ["", runs]
    if details.output_note:
        output = Text("\n".join(details.output), no_wrap=True, overflow="ellipsis")
        parts += ["", f"[bold]{escape(details.output_note)}[/]", output]
    return Group(*parts)


def task_usage(agents: list[agent_pb2.Agent]) -> agent_pb2.Usage:
    """The task's usage: its agents' (every attempt and resume), summed."""
    total = agent_pb2.Usage()
    for agent in agents:
        total.input_tokens += agent.usage.input_tokens
        total.output_tokens += agent.usage.output_tokens
        total.cache_read_tokens += agent.usage.cache_read_tokens
        total.cache_write_tokens += agent.usage.cache_write_tokens
        total.cost_usd += agent.usage.cost_usd
    return total


def budget_tokens_of(used: agent_pb2.Usage) -> int:
    """Tokens as budgets count them: input + output + cache writes."""
    return used.input_tokens + used.output_tokens + used.cache_write_tokens


def _task_names(tasks: list[task_pb2.Task]) -> str:
    if not tasks:
        return "[dim](nothing)[/]"
    return ", ".join(
        f"{escape(t.name)} {styled(enum_name(task_pb2.TaskStatus, t.status))} [dim]{t.id}[/]" for t in tasks
    )


@task.command("retry")
@click.argument("task_id")
@pass_session
def task_retry(session: Session, task_id: str) -> None:
    """Run a BLOCKED task again, with its retry count reset."""
    retried = session.orchestrator.retry_blocked_task(task_id)
    session.show(retried, lambda: console().print(f"task {escape(retried.name)} queued again"))


@task.command("edit")
@click.argument("task_id")
@click.option("--name")
@click.option("--description")
@click.option("--description-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--priority", type=click.Choice(["low", "medium", "high"]))
@click.option("--category", type=click.Choice(CATEGORIES))
@click.option("--provider", help="the provider its runs use ('' for its initiative's, else the default)")
@pass_session
def task_edit(
    session: Session,
    task_id: str,
    *,
    name: str | None,
    description: str | None,
    description_file: Path | None,
    priority: str | None,
    category: str | None,
    provider: str | None,
) -> None:
    """Change a task (refused while an agent works on it)."""
    edited = session.store.update_task(
        task_id,
        name=name,
        description=description_file.read_text() if description_file is not None else description,
        priority=priority,
        category=category,
        provider=provider,
    )
    session.show(edited, lambda: console().print(f"task {escape(edited.name)} changed"))


@task.command("move")
@click.argument("task_id")
@click.argument("phase_id")
@click.option("--reopen", is_flag=True, help="the phase is merged: reopen it (it runs and is reviewed again)")
@pass_session
def task_move(session: Session, task_id: str, phase_id: str, reopen: bool) -> None:
    """Move a task to another phase of its initiative."""
    moved = session.store.update_task(task_id, reopen=reopen, phase_id=phase_id)
    session.show(moved, lambda: console().print(f"task {escape(moved.name)} moved to phase {moved.phase_id}"))


@task.command("delete")
@click.argument("row_id", metavar="TASK_ID")
@pass_session
def task_delete(session: Session, row_id: str) -> None:
    """Delete a task and its dependency edges (refused while an agent works on it)."""
    session.store.delete_task(row_id)
    session.show({"deleted": row_id}, lambda: console().print(f"task {row_id} deleted"))
