"""`cw reply`: answer an agent's message (one the inbox lists), and say so when no run of the agent's
task will read the reply."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, Session, console, pass_session
from clients.sdk.errors import NotFoundError
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from clients.sdk import StoreClient
    from cw.store.v1 import message_pb2, task_pb2
else:
    message_pb2, task_pb2 = lazy_modules("cw.store.v1", "message_pb2", "task_pb2")


@click.command("reply", cls=CwCommand)
@click.argument("message_id")
@click.argument("text")
@pass_session
def reply(session: Session, message_id: str, text: str) -> None:
    """Answer an agent's message (it leaves the inbox). A reply reaches the next run of the agent's
    task; when there will be none, it says so (on stderr), and the reply is kept all the same."""
    sent = session.store.reply(message_id, text)
    session.show(sent, lambda: console().print(f"replied [dim]{sent.id}[/]"))
    note = unread_reply_note(_replied_task(session.store, message_id))
    if note:
        click.echo(f"cw: {note}", err=True)


def _replied_task(store: StoreClient, message_id: str) -> task_pb2.Task | None:
    """The task whose next run would read a reply to the message (None: no task runs for it)."""
    original = store.get_message(message_id)
    if original.sender_type != message_pb2.PARTICIPANT_TYPE_AGENT or not original.sender_id:
        return None
    try:
        task_id = store.get_agent(original.sender_id).task_id
        return store.get_task(task_id) if task_id else None
    except NotFoundError:
        return None


def unread_reply_note(task: task_pb2.Task | None) -> str:
    """Why no run may read a reply now, and what would make one ("" when a run will)."""
    if task is None:
        return "the agent that wrote this message has no task that runs again: no run will read this reply"
    if task.status == task_pb2.TASK_STATUS_COMPLETED:
        return f"task {task.name} ({task.id}) is completed: no run will read this reply (it is kept)"
    if task.status == task_pb2.TASK_STATUS_BLOCKED:
        return f"task {task.name} is blocked: its next run reads this reply once you retry it (cw task retry {task.id})"
    return ""
