"""`cw`: the command-line client of the cw services. Its verbs are listed in clients/cli/verbs.py and
imported only when invoked."""

from __future__ import annotations

import click

from clients.cli.app import CwGroup, Session
from clients.cli.verbs import VERBS


@click.group(cls=CwGroup, lazy=VERBS)
@click.option("--store", envvar="CW_STORE", help="store HOST:PORT  [env CW_STORE; default 127.0.0.1:50051]")
@click.option(
    "--orchestrator",
    envvar="CW_ORCHESTRATOR",
    help="orchestrator HOST:PORT  [env CW_ORCHESTRATOR; default 127.0.0.1:50052]",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.version_option(package_name="cw")
@click.pass_context
def cli(ctx: click.Context, store: str | None, orchestrator: str | None, as_json: bool) -> None:
    """Run AI coding agents on your projects: initiatives, phases, tasks, reviewed diffs."""
    ctx.obj = Session(store, orchestrator, as_json)


def main() -> None:
    cli(prog_name="cw")


if __name__ == "__main__":
    main()
