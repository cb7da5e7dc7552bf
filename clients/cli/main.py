"""`cw`: the command-line client of the cw services."""

from __future__ import annotations

import click

from clients.cli import edits
from clients.cli.agents import account, agent
from clients.cli.app import CwGroup, Session
from clients.cli.chat import chat
from clients.cli.inbox import conversations, inbox, reply
from clients.cli.live import events
from clients.cli.planning import discuss, page, phase_detail, plan, proposals
from clients.cli.review import review
from clients.cli.tasks import task
from clients.cli.usage import budget, usage
from clients.cli.watch import watch
from clients.cli.work import initiative, phase, project
from clients.web.command import web


@click.group(cls=CwGroup)
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


for command in (project, initiative, phase, task, agent, account, events, watch):
    cli.add_command(command)
# Planning with agents (clients/cli/planning.py, chat.py).
for planning_command in (page, plan, discuss, proposals, chat):
    cli.add_command(planning_command)
phase.add_command(phase_detail)
# Review and repair (issue 12): review, the inbox, conversations, an editable plan, delivery.
for command in (review, inbox, reply, conversations):
    cli.add_command(command)
# cw in the browser (clients/web/).
cli.add_command(web)
# Usage and budgets (issue 27).
for command in (usage, budget):
    cli.add_command(command)
for group, commands in (
    (task, (edits.task_edit, edits.task_move, edits.task_delete)),
    (phase, (edits.phase_edit, edits.phase_delete)),
    (project, (edits.project_edit, edits.project_remove)),
    (initiative, (edits.initiative_diff, edits.initiative_deliver)),
):
    for extra in commands:
        group.add_command(extra)


def main() -> None:
    cli(prog_name="cw")


if __name__ == "__main__":
    main()
