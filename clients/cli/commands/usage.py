"""`cw usage`: what agents used, as their CLIs reported it, summed by the orchestrator per task,
phase, initiative, account or provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, Session, console, pass_session
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
