"""`cw inbox`: everything that waits for a person, newest first, each with the command that handles
it (an agent's message is answered with `cw reply`: commands/reply.py).

`inbox_items` is pure (unit-tested with messages made by hand); `gather` reads the store once.
An item is gone as soon as it is handled: it is read again from what the store holds now.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, Session, console, pass_session
from clients.cli.views import escape, short
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from clients.sdk import StoreClient
    from cw.store.v1 import (
        account_pb2,
        agent_pb2,
        initiative_pb2,
        message_pb2,
        phase_pb2,
        project_pb2,
        proposal_pb2,
        task_pb2,
    )
else:
    (task_pb2,) = lazy_modules("cw.store.v1", "task_pb2")

# How often `cw inbox --follow` looks again while events arrive (at most).
FOLLOW_SECONDS = 1.0
# How the orchestrator's reasons start when a budget stopped a task or holds an initiative's tasks
# (orchestrator_service/controllers/agent_runs/usage.py, `spent`).
TASK_BUDGET_REASON = "the task's budget is spent"
INITIATIVE_BUDGET_REASON = "the initiative's budget is spent"
# How the orchestrator's reasons start when a task runs on a fallback provider, or names a provider
# it does not know (orchestrator_service/controllers/agent_runs/provider_choice.py).
MOVED_REASON = "moved from provider "
UNKNOWN_PROVIDER_REASON = "provider "
UNKNOWN_PROVIDER_WORDS = "is not known to this orchestrator"


PROVIDER_KINDS = ("provider moved", "unknown provider")


@dataclass(frozen=True)
class Item:
    kind: str
    id: str
    time: str  # ISO 8601, UTC
    title: str
    command: str
    detail: str = ""


@dataclass
class Snapshot:
    """What the inbox is made of, as the store holds it now."""

    waiting: list[agent_pb2.Agent] = field(default_factory=list)
    in_review: list[phase_pb2.Phase] = field(default_factory=list)
    blocked: list[task_pb2.Task] = field(default_factory=list)
    proposals: list[proposal_pb2.Proposal] = field(default_factory=list)
    messages: list[message_pb2.Message] = field(default_factory=list)
    projects: list[project_pb2.Project] = field(default_factory=list)
    accounts: list[account_pb2.Account] = field(default_factory=list)
    # PENDING tasks, for those held by their initiative's budget or naming an unknown provider.
    pending: list[task_pb2.Task] = field(default_factory=list)
    # IN_PROGRESS tasks, for those moved to a fallback provider.
    running: list[task_pb2.Task] = field(default_factory=list)
    # Initiatives whose phases are all merged (PENDING_REVIEW): only delivering them is left.
    deliverable: list[initiative_pb2.Initiative] = field(default_factory=list)
    agent_names: dict[str, str] = field(default_factory=dict)


def _when(stamp: Timestamp) -> str:
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _questions_for_a_person(agent: agent_pb2.Agent) -> list[str]:
    """Its pending questions, unless it asked another agent (that one answers: see `cw conversations`)
    or waits only for replies to its messages (listed as the messages: `cw reply`). With questions
    besides, `cw agent answer` answers them all, the messages' ids included."""
    try:
        questions = json.loads(agent.pending_questions or "[]")
    except ValueError:
        return []
    if not isinstance(questions, list) or any(isinstance(q, dict) and q.get("to") for q in questions):
        return []
    asked = [q for q in questions if isinstance(q, dict)]
    if all(q.get("kind") == "message" for q in asked):
        return []
    return [str(q.get("question") or q.get("id")) for q in asked]


def inbox_items(snapshot: Snapshot) -> list[Item]:
    items: list[Item] = []
    for agent in snapshot.waiting:
        questions = _questions_for_a_person(agent)
        if questions:
            title = f"agent {agent.name} asks: {short(questions[0])}"
            items.append(
                Item(
                    "question",
                    agent.id,
                    _when(agent.update_time),
                    title,
                    f"cw agent answer {agent.name}",
                    "\n".join(questions),
                )
            )
    for phase in snapshot.in_review:
        command = f"cw phase diff {phase.id}; then cw phase merge {phase.id} or cw review request-changes {phase.id}"
        items.append(Item("review", phase.id, _when(phase.update_time), f"phase {phase.name} awaits review", command))
    items += _budget_items(snapshot)
    items += _provider_items(snapshot)
    for task in snapshot.blocked:
        if task.reason.startswith(TASK_BUDGET_REASON):
            continue  # a budget item
        merge = task.category == task_pb2.TASK_CATEGORY_MERGE
        title = f"merge conflict: {task.name}" if merge else f"task {task.name} is blocked"
        kind = "merge conflict" if merge else "blocked"
        items.append(Item(kind, task.id, _when(task.update_time), title, f"cw task retry {task.id}", task.reason))
    for proposal in snapshot.proposals:
        command = f"cw proposals accept {proposal.id} (or cw proposals dismiss {proposal.id})"
        items.append(Item("proposal", proposal.id, _when(proposal.update_time), f"proposal: {proposal.title}", command))
    for message in snapshot.messages:
        sender = snapshot.agent_names.get(message.sender_id, message.sender_id or "someone")
        title = f"message from {sender}: {short(message.content)}"
        command = f'cw reply {message.id} "..."'
        items.append(Item("message", message.id, _when(message.create_time), title, command, message.content))
    for project in snapshot.projects:
        if project.sync_error:
            title = f"project {project.name} cannot be synced"
            command = f"cw project edit {project.id} --url URL"
            items.append(
                Item("sync failure", project.id, _when(project.sync_error_time), title, command, project.sync_error)
            )
    for account in snapshot.accounts:
        if account.unusable_reason:
            title = f"account {account.email} ({account.provider}) was refused"
            command = f"cw account update {account.id} --credentials-file F"
            items.append(
                Item("account refused", account.id, _when(account.update_time), title, command, account.unusable_reason)
            )
    for initiative in snapshot.deliverable:
        title = f"initiative {initiative.name} is ready to deliver"
        command = f"cw initiative diff {initiative.id}; then cw initiative deliver {initiative.id}"
        items.append(Item("ready to deliver", initiative.id, _when(initiative.update_time), title, command))
    return sorted(items, key=lambda item: item.time, reverse=True)


def _budget_items(snapshot: Snapshot) -> list[Item]:
    """A task a budget stopped (raise it, then retry); an initiative whose budget holds its tasks."""
    items = [
        Item(
            "budget",
            task.id,
            _when(task.update_time),
            f"task {task.name} is past its budget",
            f"cw budget task {task.id} --tokens N (or --usd X); then cw task retry {task.id}",
            task.reason,
        )
        for task in snapshot.blocked
        if task.reason.startswith(TASK_BUDGET_REASON)
    ]
    held: dict[str, list[task_pb2.Task]] = {}
    for task in snapshot.pending:
        if task.reason.startswith(INITIATIVE_BUDGET_REASON) and task.initiative_id:
            held.setdefault(task.initiative_id, []).append(task)
    for initiative_id, tasks in held.items():
        latest = max(tasks, key=lambda task: task.update_time.ToNanoseconds())
        title = f"initiative {initiative_id} is past its budget: {len(tasks)} task(s) wait"
        command = f"cw budget initiative {initiative_id} --tokens N (or --usd X)"
        items.append(Item("budget", initiative_id, _when(latest.update_time), title, command, latest.reason))
    return items


def _provider_items(snapshot: Snapshot) -> list[Item]:
    """A task that runs on a fallback provider because every account of its own rests (informs:
    gone once the run ends); a task naming a provider the orchestrator does not know (waits)."""
    items = []
    for task in [*snapshot.pending, *snapshot.running]:
        reason = task.reason
        if reason.startswith(MOVED_REASON):
            title = f"task {task.name} runs on another provider"
            command = f"cw task show {task.id}; cw account list"
            items.append(Item("provider moved", task.id, _when(task.update_time), title, command, reason))
        elif reason.startswith(UNKNOWN_PROVIDER_REASON) and UNKNOWN_PROVIDER_WORDS in reason:
            title = f"task {task.name} waits for a provider this orchestrator does not run"
            command = f"cw task edit {task.id} --provider NAME (or start the orchestrator with --provider NAME=COMMAND)"
            items.append(Item("unknown provider", task.id, _when(task.update_time), title, command, reason))
    return items


def gather(store: StoreClient) -> Snapshot:
    messages = store.messages_for_user()
    return Snapshot(
        waiting=store.list_agents(status="waiting_for_input"),
        in_review=store.phases_with_status("pending_review"),
        blocked=store.list_tasks(status="blocked"),
        proposals=store.list_proposals(status="pending"),
        messages=messages,
        projects=store.list_projects(),
        accounts=store.list_accounts(),
        pending=store.list_tasks(status="pending"),
        running=store.list_tasks(status="in_progress"),
        deliverable=store.list_initiatives(status="pending_review"),
        agent_names={sender: store.get_agent(sender).name for sender in {m.sender_id for m in messages} if sender},
    )


def _print(item: Item, prefix: str = "") -> None:
    console().print(f"{prefix}[bold]{escape(item.kind)}[/] {escape(item.title)} [dim]{item.id}[/]")
    shown_details = ("blocked", "merge conflict", "sync failure", "account refused", "budget", *PROVIDER_KINDS)
    if item.detail and item.kind in shown_details:
        for line in item.detail.splitlines()[-6:]:
            console().print(f"    {escape(line)}", soft_wrap=True)
    console().print(f"    [cyan]{escape(item.command)}[/]")


def _print_all(items: list[Item]) -> None:
    for item in items:
        _print(item)
    if not items:
        console().print("nothing waits for you")


def _changes(store: StoreClient, after: int) -> Iterator[list[Item]]:
    """The inbox again each time something happened after event `after` (at most once per
    FOLLOW_SECONDS)."""
    last = datetime.now(UTC)
    dirty = False
    for event in store.watch_events(after, heartbeat_seconds=FOLLOW_SECONDS):
        dirty = dirty or (event.sequence != 0 and not event.type.startswith("log_chunk:"))
        if dirty and (datetime.now(UTC) - last).total_seconds() >= FOLLOW_SECONDS:
            dirty, last = False, datetime.now(UTC)
            yield inbox_items(gather(store))


@click.command("inbox", cls=CwCommand)
@click.option("-f", "--follow", is_flag=True, help="keep watching: new items and handled ones as they come")
@pass_session
def inbox(session: Session, follow: bool) -> None:
    """Everything that waits for you, newest first, each with the command that handles it."""
    # The log's position before the first read: a change made while it is read is followed, not lost.
    start = session.store.head_sequence() if follow else 0
    items = inbox_items(gather(session.store))
    if not follow:
        session.show([asdict(i) for i in items], lambda: _print_all(items))
        return
    for item in items:
        _show_change(session, "new", item)
    shown = {(i.kind, i.id): i for i in items}
    for current in _changes(session.store, start):
        now = {(i.kind, i.id): i for i in current}
        for key in [k for k in shown if k not in now]:
            _show_change(session, "handled", shown.pop(key))
        for key, item in now.items():
            if key not in shown:
                shown[key] = item
                _show_change(session, "new", item)


def _show_change(session: Session, change: str, item: Item) -> None:
    if session.as_json:
        click.echo(json.dumps({"change": change, **asdict(item)}), nl=True)
    elif change == "new":
        _print(item, "+ ")
    else:
        console().print(f"- handled: {escape(item.title)} [dim]{item.id}[/]")
