"""`cw events`: the event log, replayed and followed."""

from __future__ import annotations

import json

import click

from clients.cli.app import CwCommand, Session, console, errors, message_dict, pass_session
from clients.cli.views import event_line, stream_notice
from clients.sdk import CwError
from clients.sdk.calls import StreamState
from clients.sdk.event_types import check_event_types, shown_by_default
from cw.store.v1 import event_pb2

# How often an idle followed stream hears from the server: how soon a reconnect is noticed.
FOLLOW_HEARTBEAT_SECONDS = 2.0


def _known_types(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(check_event_types(value))
    except CwError as error:
        raise click.BadParameter(error.message) from None


@click.command(cls=CwCommand)
@click.option("--follow", "-f", is_flag=True, help="keep printing new events")
@click.option("--since", default=0, type=click.IntRange(min=0), help="only events after this sequence")
@click.option("--type", "types", multiple=True, callback=_known_types, help="only events of this type (repeatable)")
@click.option("--initiative", "initiative_id", default="", help="only the events of this initiative")
@click.option("--all", "show_all", is_flag=True, help="also agent output (log_chunk:*), hidden unless asked for")
@pass_session
def events(
    session: Session, *, follow: bool, since: int, types: tuple[str, ...], initiative_id: str, show_all: bool
) -> None:
    """The event log: replayed from --since, then followed with --follow (JSON lines with --json)."""

    def wanted(event: event_pb2.Event) -> bool:
        return event.sequence > 0 and (show_all or bool(types) or shown_by_default(event.type))

    if not follow:
        found = [e for e in session.store.list_events(since, types, initiative_id) if wanted(e)]

        def render() -> None:
            for event in found:
                console().print(event_line(event), markup=False, soft_wrap=True)

        session.show(found, render)
        return
    orchestrator = session.orchestrator

    def tell(state: StreamState) -> None:
        errors().print(stream_notice("orchestrator", orchestrator.address, state), markup=False, soft_wrap=True)

    for event in orchestrator.events(since, types, initiative_id, FOLLOW_HEARTBEAT_SECONDS, tell):
        if not wanted(event):
            continue
        if session.as_json:
            click.echo(json.dumps(message_dict(event), sort_keys=True))
        else:
            console().print(event_line(event), markup=False, soft_wrap=True)
