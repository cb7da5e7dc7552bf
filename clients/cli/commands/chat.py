"""`cw chat`: refine a phase or a task message by message with an agent.

`cw chat phase|task ID "message"` sends the message (SendChatMessage) and waits for the reply;
the changes the agent made with it are applied at once, and `cw chat undo` reverts the latest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import click
import grpc
from rich.markup import escape

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.planning_runs import POLL_SECONDS, WAIT_HELP, Attempts, show_questions
from clients.cli.planning_views import chat_transcript
from clients.sdk.errors import FailedPreconditionError, NotFoundError
from cw.store.v1 import chat_session_pb2, task_pb2

KINDS = click.Choice(["phase", "task"])
Verb = TypeVar("Verb", bound=Callable[..., None])


@click.group(cls=CwGroup)
def chat() -> None:
    """Refine a phase or a task with an agent, message by message; each reply's changes can be undone."""


def _send(session: Session, kind: str, target_id: str, message: str, no_wait: bool) -> None:
    sent = session.orchestrator.send_chat_message(kind, target_id, message)
    if no_wait:
        session.show(sent, lambda: console().print(f"sent [dim]{sent.message.id}[/]"))
        return
    # The chat's task answers every message: only attempts that fail from now on are told.
    attempts = Attempts.since(session.store.list_agents(task_id=sent.task.id))
    reply = _wait_for_reply(session, sent.chat_session.id, sent.message.id, sent.task.id, attempts)
    if reply is None:
        return
    change_set = session.store.get_change_set(reply.change_set_id) if reply.change_set_id else None

    def render() -> None:
        console().print(escape(reply.content))
        if change_set is not None:
            console().print(
                f"[dim]applied {len(change_set.entries)} changes ({change_set.id}): cw chat undo {kind} {target_id}[/]"
            )

    session.show({"reply": reply, "changeSet": change_set} if change_set else {"reply": reply}, render)


def _wait_for_reply(
    session: Session, session_id: str, message_id: str, task_id: str, attempts: Attempts
) -> chat_session_pb2.ChatMessage | None:
    """The first reply after the message; None (questions shown) when the agent asks first; each
    failed attempt told as it happens."""
    store = session.store
    while True:
        messages = store.chat_messages(session_id)
        ids = [message.id for message in messages]
        later = messages[ids.index(message_id) + 1 :] if message_id in ids else []
        reply = next((m for m in later if m.role == chat_session_pb2.CHAT_ROLE_ASSISTANT), None)
        if reply is not None:
            return reply
        task = store.get_task(task_id)
        attempts.tell(task, store.list_agents(task_id=task_id))
        if task.status == task_pb2.TASK_STATUS_BLOCKED:
            raise FailedPreconditionError(grpc.StatusCode.FAILED_PRECONDITION, f"the agent failed: {task.reason}")
        waiting = store.list_agents(task_id=task_id, status="waiting_for_input")
        if waiting:
            show_questions(session, task, waiting[-1])
            return None
        time.sleep(POLL_SECONDS)


def about_target(name: str) -> Callable[[Verb], click.Command]:
    """`cw chat NAME phase|task ID`: a verb about the open chat of a phase or a task."""

    def decorate(function: Verb) -> click.Command:
        with_target = click.argument("target_id")(pass_session(function))
        return chat.command(name)(click.argument("kind", type=KINDS)(with_target))

    return decorate


def _active(session: Session, kind: str, target_id: str) -> chat_session_pb2.ChatSession:
    found = session.store.active_chat(kind, target_id)
    if found is None:
        raise NotFoundError(grpc.StatusCode.NOT_FOUND, f"no open chat about {kind} {target_id!r}", "NOT_FOUND")
    return found


def _chat_command(kind: str, help_text: str) -> None:
    @chat.command(kind, help=help_text)
    @click.argument("target_id", metavar=kind.upper())
    @click.argument("message")
    @click.option("--no-wait", "no_wait", is_flag=True, help=WAIT_HELP)
    @pass_session
    def send(session: Session, target_id: str, message: str, no_wait: bool) -> None:
        _send(session, kind, target_id, message, no_wait)


_chat_command("phase", "Tell the agent what to change in the phase (its name, content, tasks).")
_chat_command("task", "Tell the agent what to change in the task (its name, description).")


@about_target("show")
def chat_show(session: Session, kind: str, target_id: str) -> None:
    """The open chat: every message, each reply with its changes and whether they still stand."""
    found = _active(session, kind, target_id)
    messages = session.store.chat_messages(found.id)
    change_sets = {change_set.id: change_set for change_set in session.store.change_sets(found.id)}
    session.show(
        {"chatSession": found, "messages": messages}, lambda: console().print(chat_transcript(messages, change_sets))
    )


@about_target("undo")
def chat_undo(session: Session, kind: str, target_id: str) -> None:
    """Revert the latest changes the chat applied that still stand."""
    found = _active(session, kind, target_id)
    applied = [
        change_set
        for change_set in session.store.change_sets(found.id)
        if change_set.status == chat_session_pb2.CHANGE_SET_STATUS_APPLIED
    ]
    if not applied:
        raise FailedPreconditionError(grpc.StatusCode.FAILED_PRECONDITION, "nothing to undo in this chat")
    reverted = session.store.revert_change_set(applied[-1].id)
    session.show(reverted, lambda: console().print(f"reverted {len(reverted.entries)} changes ({reverted.id})"))


@about_target("close")
def chat_close(session: Session, kind: str, target_id: str) -> None:
    """End the chat: the next message opens a new one, with a new agent."""
    closed = session.store.close_chat(_active(session, kind, target_id).id)
    session.show(closed, lambda: console().print("chat closed"))
