"""`cw web` (serve the pages) and `cw web url` (a new one-time login link)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clients.cli.app import CwCommand, Session
from clients.web.links import DEFAULT_WEB, new_login_url, web_address
from cw_edge.listen import Listening, ListenRefused

LISTEN_HELP = f"HOST:PORT to serve on  [env CW_WEB; default {DEFAULT_WEB}]"


@click.group(invoke_without_command=True)
@click.option("--listen", envvar="CW_WEB", default=DEFAULT_WEB, help=LISTEN_HELP)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM certificate")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key")
@click.option("--insecure", is_flag=True, help="allow plaintext on a non-loopback address")
@click.option("--store", "store_address", envvar="CW_STORE", default=None, help="store HOST:PORT  [env CW_STORE]")
@click.option(
    "--orchestrator",
    "orchestrator_address",
    envvar="CW_ORCHESTRATOR",
    default=None,
    help="orchestrator HOST:PORT  [env CW_ORCHESTRATOR]",
)
@click.pass_context
def web(
    ctx: click.Context,
    *,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure: bool,
    store_address: str | None,
    orchestrator_address: str | None,
) -> None:
    """cw in the browser: serves the pages and prints a one-time login link."""
    if ctx.invoked_subcommand is not None:
        return
    session = ctx.find_object(Session)
    store_address = store_address or (session.store_address if session else None)
    orchestrator_address = orchestrator_address or (session.orchestrator_address if session else None)
    # Imported here: every other `cw` command starts without the web server's libraries (~100 ms).
    from clients.web.server import serve  # noqa: PLC0415

    try:
        serve(Listening(listen, tls_cert, tls_key, insecure), store_address, orchestrator_address)
    except ListenRefused as refused:
        click.echo(f"error: cw web: {refused}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


@web.command("url", cls=CwCommand)
@click.option("--listen", envvar="CW_WEB", default=None, help="where cw web listens  [env CW_WEB]")
@click.option("--https", is_flag=True, help="the server serves TLS")
@click.pass_context
def web_url(ctx: click.Context, listen: str | None, https: bool) -> None:
    """A one-time login link for the web pages (valid for 10 minutes, once)."""
    url = new_login_url(web_address(listen), https)
    session = ctx.find_object(Session)
    click.echo(json.dumps({"url": url}) if session is not None and session.as_json else url)
