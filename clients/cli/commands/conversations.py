"""`cw conversations`: what agents asked each other, and what they answered."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, Session, console, pass_session
from clients.cli.views import escape, short, table
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from cw.store.v1 import conversation_pb2
else:
    (conversation_pb2,) = lazy_modules("cw.store.v1", "conversation_pb2")


@click.command("conversations", cls=CwCommand)
@click.option("--initiative", "initiative_id", default="", help="only this initiative's")
@pass_session
def conversations(session: Session, initiative_id: str) -> None:
    """What agents asked each other, and what they answered."""
    found = session.store.list_conversations(initiative_id)
    names = {a.id: a.name for a in session.store.list_agents()} if found else {}

    def render() -> None:
        grid = table("ID", "FROM", "TO", "STATUS", "QUESTION", "ANSWER")
        for c in found:
            status = conversation_pb2.ConversationStatus.Name(c.status).removeprefix("CONVERSATION_STATUS_").lower()
            grid.add_row(
                c.id,
                escape(names.get(c.from_agent_id, c.from_agent_id)),
                escape(names.get(c.to_agent_id, c.to_agent_id)),
                status,
                escape(short(c.question)),
                escape(short(c.answer)),
            )
        console().print(grid)

    session.show(found, render)
