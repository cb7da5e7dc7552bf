"""`cw watch`: an initiative as it moves, driven by its event stream, until it needs a person.

The stream survives the services going away: the view says they are unreachable, and once they
are back it resumes from the last event it showed, so nothing is missed or shown twice.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwCommand, Session, console, errors, pass_session
from clients.cli.views import age, agent_state, escape, event_line, is_live, short, stream_notice, styled
from clients.sdk import CwError
from clients.sdk.calls import StreamState, enum_name
from clients.sdk.event_types import LIFECYCLE_EVENT_TYPES, shown_by_default
from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from clients.sdk import StoreClient

# An idle stream hears from the store this often: how soon the view notices the store is back.
WATCH_HEARTBEAT_SECONDS = 1.0
RECENT_EVENTS = 8


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
                return f"agent {agent.name} has questions: cw agent answer {agent.name}"
        for task in self.tasks:
            if task.status == task_pb2.TASK_STATUS_BLOCKED:
                why = f" ({short(task.reason)})" if task.reason else ""
                return f"task {task.name} ({task.id}) is blocked{why}: cw task show {task.id}; cw task retry {task.id}"
        return ""

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table(box=None, show_header=False, pad_edge=False)
        for column in ("name", "bar", "count", "status"):
            grid.add_column(column)
        for phase in self.phases:
            mine = [t for t in self.tasks if t.phase_id == phase.id]
            done = sum(t.status == task_pb2.TASK_STATUS_COMPLETED for t in mine)
            bar = ProgressBar(total=max(len(mine), 1), completed=done, width=30)
            status = styled(enum_name(phase_pb2.PhaseStatus, phase.status))
            grid.add_row(escape(phase.name), bar, f"{done}/{len(mine)}", status + _why(phase.reason))
        parts: list[RenderableType] = [grid]
        stuck = [t for t in self.tasks if t.reason and t.status != task_pb2.TASK_STATUS_COMPLETED]
        for task in stuck:
            status = styled(enum_name(task_pb2.TaskStatus, task.status))
            parts.append(f"task {escape(task.name)} {status} [dim]{task.id}[/]{_why(task.reason)}")
        live = [a for a in self.agents if is_live(a)]
        if live:
            agents = Table(box=None, header_style="bold", pad_edge=False)
            for column in ("AGENT", "STATE", "TASK", "AGE"):
                agents.add_column(column)
            names = {t.id: t.name for t in self.tasks}
            for a in live:
                task_name = escape(names.get(a.task_id, a.task_id))
                agents.add_row(escape(a.name), styled(agent_state(a)), task_name, age(a.create_time))
            parts.append(agents)
        else:
            parts.append("[dim]no live agents[/]")
        title = f"[bold]{escape(self.initiative.name)}[/] [dim]{datetime.now(UTC).astimezone().strftime('%H:%M:%S')}[/]"
        return Group(title, *parts)


def _why(reason: str) -> str:
    return f" [italic]{escape(short(reason))}[/]" if reason else ""


def load_board(store: StoreClient, initiative_id: str) -> Board:
    found = store.get_initiative(initiative_id)
    return Board(
        found,
        store.list_phases(found.id),
        store.list_tasks(initiative_id=found.id),
        store.list_agents(initiative_id=found.id),
    )


@dataclass
class View:
    """What the person sees. On a terminal: the board, redrawn, with the latest events under it.
    Otherwise (a pipe, a log): one line per event and per notice, then the final board. With
    --json: only the final answer on stdout, notices on stderr."""

    session: Session
    board: Board
    notice: str = ""
    reason: str = ""
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    live: Live | None = None

    def __enter__(self) -> View:
        if not self.session.as_json and console().is_terminal:
            from rich.live import Live

            self.live = Live(console=console(), get_renderable=self.renderable, refresh_per_second=4)
            self.live.start()
        elif not self.session.as_json:
            console().print(f"watching {self.board.initiative.name} ({self.board.initiative.id}); Ctrl-C stops")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.stop()

    def renderable(self) -> RenderableType:
        from rich.console import Group

        events = [escape(line) for line in self.recent]
        notes = [f"[bold red]{escape(self.notice)}[/]"] if self.notice else []
        notes += [f"[bold]{escape(self.reason)}[/]"] if self.reason else []
        return Group(self.board.render(), *(["", "[bold]recent events[/]", *events] if events else []), *notes)

    def event(self, event: event_pb2.Event) -> None:
        line = event_line(event)
        self.recent.append(line)
        if self.live is None and not self.session.as_json:
            console().print(line, markup=False, soft_wrap=True)

    def stream_state(self, state: StreamState) -> None:
        text = stream_notice("store", self.session.store.address, state)
        self.notice = "" if state.connected else text
        if self.live is None:
            (errors() if self.session.as_json else console()).print(text, markup=False, soft_wrap=True)

    def finish(self, reason: str) -> None:
        self.notice, self.reason = "", reason
        if self.live is not None:
            self.live.refresh()
        elif self.session.as_json:
            self.session.show({"initiative": self.board.initiative, "reason": reason}, lambda: None)
        else:
            console().print(self.board.render())
            console().print(f"[bold]{escape(reason)}[/]")


@click.command(cls=CwCommand)
@click.argument("initiative_id")
@pass_session
def watch(session: Session, initiative_id: str) -> None:
    """A live view of an initiative, until it needs a person (review, question, blocked task) or is
    done. It rides out a restart of the services: it says they are unreachable and carries on."""
    store = session.store
    last = store.head_sequence()
    view = View(session, load_board(store, initiative_id))
    with view:
        reason, stale = view.board.needs_a_person(), False
        stream = store.watch_events(last, (), view.board.initiative.id, WATCH_HEARTBEAT_SECONDS, view.stream_state)
        for event in stream if not reason else ():
            last = max(last, event.sequence)
            if event.type in LIFECYCLE_EVENT_TYPES:
                view.event(event)
            if event.sequence and not shown_by_default(event.type) and not stale:
                continue  # agent output: nothing on the board changes
            try:
                view.board, stale = load_board(store, view.board.initiative.id), False
            except CwError:
                stale = True  # the store went away between the event and the reads: try again later
                continue
            if reason := view.board.needs_a_person():
                # The board is read after the stream's latest event: show what led to it too.
                for later in store.list_events(last, LIFECYCLE_EVENT_TYPES, view.board.initiative.id):
                    view.event(later)
                break
        view.finish(reason)
