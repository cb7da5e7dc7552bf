"""`cw events` and `cw watch`: what happens, as it happens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from google.protobuf import json_format
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from clients.cli.agents import age
from clients.cli.app import CwCommand, Session, console, pass_session
from clients.cli.work import styled
from clients.sdk.calls import enum_name
from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2

WATCH_INTERVAL_SECONDS = 0.5


def event_line(event: event_pb2.Event) -> str:
    when = event.time.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S")
    subject = " ".join(
        f"{name}={value}"
        for name, value in (("phase", event.phase_id), ("task", event.task_id), ("agent", event.agent_id))
        if value
    )
    details = json.dumps(json_format.MessageToDict(event.details), sort_keys=True) if event.details.fields else ""
    return f"{event.sequence:>6} {when} {event.type:<26} {subject} {details}".rstrip()


@click.command(cls=CwCommand)
@click.option("--follow", "-f", is_flag=True, help="keep printing new events")
@click.option("--since", default=0, type=click.IntRange(min=0), help="only events after this sequence")
@click.option("--type", "types", multiple=True, help="only events of this type (repeatable)")
@pass_session
def events(session: Session, follow: bool, since: int, types: tuple[str, ...]) -> None:
    """The event log: replayed from --since, then followed with --follow (JSON lines with --json)."""
    if not follow:
        found = list(session.store.list_events(since, list(types)))

        def render() -> None:
            for event in found:
                console.print(event_line(event), markup=False, soft_wrap=True)

        session.show(found, render)
        return
    for event in session.orchestrator.events(since, list(types)):
        if session.as_json:
            click.echo(json.dumps(json_format.MessageToDict(event), sort_keys=True))
        else:
            console.print(event_line(event), markup=False, soft_wrap=True)


@dataclass
class Board:
    initiative: initiative_pb2.Initiative
    phases: list[phase_pb2.Phase]
    tasks: list[task_pb2.Task]
    agents: list[agent_pb2.Agent]

    def needs_a_person(self) -> str:
        """Why the watch ends, or "" while it goes on."""
        if self.initiative.status in (
            initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW,
            initiative_pb2.INITIATIVE_STATUS_COMPLETED,
        ):
            return "done: the initiative awaits its review"
        for phase in self.phases:
            if phase.status == phase_pb2.PHASE_STATUS_PENDING_REVIEW:
                return f"phase {phase.name} ({phase.id}) awaits review: cw phase diff {phase.id}"
        for agent in self.agents:
            if agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
                return f"agent {agent.name} has questions: cw agent answer {agent.id}"
        for task in self.tasks:
            if task.status == task_pb2.TASK_STATUS_BLOCKED:
                return f"task {task.name} ({task.id}) is blocked: cw task retry {task.id}"
        return ""

    def render(self) -> Group:
        grid = Table(box=None, show_header=False, pad_edge=False)
        for column in ("name", "bar", "count", "status"):
            grid.add_column(column)
        for phase in self.phases:
            mine = [t for t in self.tasks if t.phase_id == phase.id]
            done = sum(t.status == task_pb2.TASK_STATUS_COMPLETED for t in mine)
            bar = ProgressBar(total=max(len(mine), 1), completed=done, width=30)
            grid.add_row(phase.name, bar, f"{done}/{len(mine)}", styled(enum_name(phase_pb2.PhaseStatus, phase.status)))
        agents = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("AGENT", "STATUS", "TASK", "AGE"):
            agents.add_column(column)
        names = {t.id: t.name for t in self.tasks}
        for a in self.agents:
            agents.add_row(
                a.name, styled(enum_name(agent_pb2.AgentStatus, a.status)), names.get(a.task_id, a.task_id), age(a)
            )
        title = f"[bold]{self.initiative.name}[/] [dim]{datetime.now(UTC).strftime('%H:%M:%S')}[/]"
        return Group(title, grid, agents if self.agents else "[dim]no live agents[/]")


def _board(session: Session, initiative_id: str) -> Board:
    found = session.store.get_initiative(initiative_id)
    live = [
        a
        for status in ("running", "waiting_for_input")
        for a in session.store.list_agents(status=status)
        if a.initiative_id == found.id
    ]
    return Board(found, session.store.list_phases(found.id), session.store.list_tasks(initiative_id=found.id), live)


@click.command(cls=CwCommand)
@click.argument("initiative_id")
@pass_session
def watch(session: Session, initiative_id: str) -> None:
    """A live view of an initiative, until it needs a person (review, question, blocked task) or is done."""
    board = _board(session, initiative_id)
    with Live(board.render(), console=console, auto_refresh=False, transient=session.as_json) as live:
        while not (reason := board.needs_a_person()):
            time.sleep(WATCH_INTERVAL_SECONDS)
            board = _board(session, initiative_id)
            live.update(board.render(), refresh=True)
        live.update(Group(board.render(), f"[bold]{reason}[/]"), refresh=True)
    if session.as_json:
        session.show({"initiative": board.initiative, "reason": reason}, lambda: None)
