"""`cw account`: the provider accounts agents use, round-robin. Credentials are stored, never printed."""

from __future__ import annotations

from pathlib import Path

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import escape, table

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
    session.show(created, lambda: console().print(f"account {created.email} ({created.provider}) [dim]{created.id}[/]"))


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
    session.show(updated, lambda: console().print(f"account {updated.email} ({updated.provider}) updated"))


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
        console().print(grid)

    session.show(accounts, render)
