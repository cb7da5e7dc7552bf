"""`cw usage`: what agents used, as their CLIs reported it; `cw budget`: a task's or initiative's
budget (tokens count input + output + cache writes, as the orchestrator counts them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, CwGroup, Session, console, pass_session
from clients.cli.views import budget_line, escape, table

if TYPE_CHECKING:
    from rich.table import Table

    from cw.orchestrator.v1 import orchestrator_pb2

SCOPES = ["task", "phase", "initiative", "account", "provider"]


def totals_table(scope: str, totals: list[orchestrator_pb2.UsageTotal]) -> Table:
    grid = table(scope.upper() or "ALL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST USD", "AGENTS", "BUDGET")
    for total in totals:
        used = total.usage
        budget = budget_line(
            total.budget_tokens_used,
            used.cost_usd,
            total.budget_tokens if total.HasField("budget_tokens") else None,
            total.budget_usd if total.HasField("budget_usd") else None,
        )
        grid.add_row(
            escape(total.id) or "(none)",
            f"{used.input_tokens:,}",
            f"{used.output_tokens:,}",
            f"{used.cache_read_tokens:,}",
            f"{used.cache_write_tokens:,}",
            f"{used.cost_usd:,.4f}",
            str(total.agent_count),
            budget,
        )
    return grid


@click.command("usage", cls=CwCommand)
@click.option("--by", "scope", default="initiative", type=click.Choice(["all", *SCOPES]), show_default=True)
@click.option("--id", "member", default="", help="only this task, phase, initiative, account or provider")
@pass_session
def usage(session: Session, scope: str, member: str) -> None:
    """Tokens and cost per task, phase, initiative, account or provider, as the agents' CLIs reported them."""
    scope = "" if scope == "all" else scope
    if member and not scope:
        raise click.UsageError("--id needs --by task|phase|initiative|account|provider")
    totals = list(session.orchestrator.usage(scope, member).totals)
    session.show(totals, lambda: console().print(totals_table(scope, totals)))


@click.group(cls=CwGroup)
def budget() -> None:
    """Budgets: a task's run is stopped past its budget; an initiative past its own starts nothing more."""


TOKENS_HELP = "at most this many tokens (input + output + cache writes)"


def _budget_options(function: Callable[..., None]) -> Callable[..., None]:
    function = click.option("--usd", type=click.FloatRange(min=0), default=None, help="at most this many USD")(function)
    function = click.option("--tokens", type=click.IntRange(min=0), default=None, help=TOKENS_HELP)(function)
    return click.argument("row_id", metavar="ID")(function)


@budget.command("task")
@_budget_options
@pass_session
def budget_task(session: Session, row_id: str, tokens: int | None, usd: float | None) -> None:
    """Set (or, with neither option, clear) a task's budget; then `cw task retry ID` resumes a task it stopped."""
    updated = session.store.set_budget("task", row_id, tokens, usd)
    session.show(updated, lambda: console().print(f"task {escape(updated.name)}: {_budget_text(tokens, usd)}"))


@budget.command("initiative")
@_budget_options
@pass_session
def budget_initiative(session: Session, row_id: str, tokens: int | None, usd: float | None) -> None:
    """Set (or, with neither option, clear) an initiative's budget; its waiting tasks start once it allows."""
    updated = session.store.set_budget("initiative", row_id, tokens, usd)
    session.show(updated, lambda: console().print(f"initiative {escape(updated.name)}: {_budget_text(tokens, usd)}"))


def _budget_text(tokens: int | None, usd: float | None) -> str:
    parts = ([f"{tokens:,} tokens"] if tokens is not None else []) + ([f"${usd:,.4f}"] if usd is not None else [])
    return "budget " + " and ".join(parts) if parts else "no budget"
