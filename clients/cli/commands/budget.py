"""`cw budget`: a task's or initiative's budget (tokens count input + output + cache writes, as the
orchestrator counts them)."""

from __future__ import annotations

from collections.abc import Callable

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import escape


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
