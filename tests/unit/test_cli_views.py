"""What the CLI shows, fed with messages made by hand: why a task is stuck, what waits for what,
how each agent's run ended, what a merge made. (The fields the orchestrator fills are rendered
here before any orchestrator fills them.)"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import click
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console, RenderableType

from clients.cli.app import CwCommand
from clients.cli.commands.agent import agent_view
from clients.cli.commands.initiative import initiative_tree
from clients.cli.commands.project import projects_table
from clients.cli.commands.task import TaskDetails, task_view, tasks_table
from clients.cli.commands.watch import Board
from clients.cli.main import cli
from clients.cli.views import agent_state, clock, event_line, merged_line, short, stream_notice
from clients.sdk import UnavailableError
from clients.sdk.calls import StreamState
from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2

CRASH = "agent crashed: exited with 3\nTraceback (most recent call last):\n  File 'agent.py'"


def text(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def stamp(when: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(when)
    return result


def test_an_ended_agent_shows_how_its_run_ended() -> None:
    def state(status: agent_pb2.AgentStatus.ValueType, outcome: agent_pb2.AgentOutcome.ValueType) -> str:
        return agent_state(agent_pb2.Agent(status=status, outcome=outcome))

    stopped = agent_pb2.AGENT_STATUS_STOPPED
    assert state(stopped, agent_pb2.AGENT_OUTCOME_DONE) == "done"
    assert state(stopped, agent_pb2.AGENT_OUTCOME_FAILED) == "failed"
    assert state(agent_pb2.AGENT_STATUS_CRASHED, agent_pb2.AGENT_OUTCOME_CRASHED) == "crashed"
    assert state(stopped, agent_pb2.AGENT_OUTCOME_STOPPED) == "stopped by you"
    assert state(stopped, agent_pb2.AGENT_OUTCOME_RATE_LIMITED) == "rate limited"
    assert state(stopped, agent_pb2.AGENT_OUTCOME_NEVER_STARTED) == "never started"
    assert state(stopped, agent_pb2.AGENT_OUTCOME_UNSPECIFIED) == "stopped"  # stored before outcomes existed
    # While it lives, its status is what matters (a resumed agent keeps its last outcome).
    assert state(agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_OUTCOME_DONE) == "running"
    assert state(agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT, agent_pb2.AGENT_OUTCOME_DONE) == "waiting_for_input"


def test_table_cells_take_the_first_line_and_cut_it() -> None:
    assert short(CRASH) == "agent crashed: exited with 3"
    assert short("\n\n  x  \n") == "x"
    long = "a" * 100
    assert short(long) == "a" * 59 + "…" and len(short(long, 10)) == 10
    assert short("") == ""


def test_task_list_has_a_reason_column_cut_short() -> None:
    blocked = task_pb2.Task(id="t1", name="build", status=task_pb2.TASK_STATUS_BLOCKED, reason=CRASH + "x" * 200)
    shown = text(tasks_table([blocked, task_pb2.Task(id="t2", name="other")]))
    assert "REASON" in shown and "agent crashed: exited with 3" in shown
    assert "Traceback" not in shown and "x" * 100 not in shown


def test_project_list_shows_a_sync_error() -> None:
    broken = project_pb2.Project(
        id="p1", name="app", url="/gone", sync_error="fatal: '/gone' does not appear to be a git repository"
    )
    shown = text(projects_table([broken, project_pb2.Project(id="p2", name="fine", url="/ok")]))
    assert "SYNC ERROR" in shown and "fatal: '/gone' does not appear" in shown


def test_initiative_tree_shows_dependencies_and_reasons() -> None:
    found = initiative_pb2.Initiative(id="i1", name="Auth", branch="cw/auth")
    phases = [
        phase_pb2.Phase(
            id="p1", name="Schema", status=phase_pb2.PHASE_STATUS_BLOCKED, reason="project app cannot be fetched"
        ),
        phase_pb2.Phase(id="p2", name="API", status=phase_pb2.PHASE_STATUS_APPROVED),
    ]
    tasks = [
        task_pb2.Task(id="t1", phase_id="p1", name="Users table"),
        task_pb2.Task(id="t2", phase_id="p1", name="Sessions table", status=task_pb2.TASK_STATUS_BLOCKED, reason=CRASH),
        task_pb2.Task(id="t3", name="Loose task"),
    ]
    phase_edges = [phase_pb2.PhaseDependency(phase_id="p2", depends_on_phase_id="p1")]
    task_edges = [task_pb2.TaskDependency(task_id="t2", depends_on_task_id="t1")]
    lines = text(initiative_tree(found, phases, tasks, phase_edges, task_edges)).splitlines()
    line = {name: next(item for item in lines if name in item) for name in ("Schema", "API", "Sessions", "Users")}
    assert "after: Schema" in line["API"] and "after" not in line["Schema"]
    assert "project app cannot be fetched" in line["Schema"]
    assert "after: Users table" in line["Sessions"] and "agent crashed: exited with 3" in line["Sessions"]
    assert "after" not in line["Users"] and "Traceback" not in "".join(lines)
    assert any("(no phase)" in item for item in lines) and any("Loose task" in item for item in lines)


def test_task_show_says_everything_about_one_task() -> None:
    now = datetime.now(UTC)
    found = task_pb2.Task(
        id="t2",
        phase_id="p1",
        name="Sessions table",
        status=task_pb2.TASK_STATUS_PENDING,
        reason=CRASH,
        retry_count=2,
        next_attempt_time=stamp(now + timedelta(seconds=90)),
    )
    crashed = agent_pb2.Agent(
        name="tidy-jackal", status=agent_pb2.AGENT_STATUS_CRASHED, outcome=agent_pb2.AGENT_OUTCOME_CRASHED, exit_code=3
    )
    crashed.error = "exited with 3"
    stopped = agent_pb2.Agent(
        name="calm-ibis", status=agent_pb2.AGENT_STATUS_STOPPED, outcome=agent_pb2.AGENT_OUTCOME_STOPPED
    )
    details = TaskDetails(
        found,
        depends_on=[task_pb2.Task(id="t1", name="Users table", status=task_pb2.TASK_STATUS_COMPLETED)],
        dependents=[task_pb2.Task(id="t3", name="Login", status=task_pb2.TASK_STATUS_PENDING)],
        agents=[crashed, stopped],
        output=["line 1", "the last line"],
        output_note="last output of agent calm-ibis",
    )
    shown = text(task_view(details))
    assert "Sessions table" in shown and "pending" in shown
    assert "agent crashed: exited with 3" in shown and "Traceback (most recent call last)" in shown  # the whole reason
    assert "retries" in shown and " 2" in shown and "(in " in shown
    assert re.search(r"waits for +Users table completed t1", shown) and re.search(r"needed by +Login pending t3", shown)
    assert re.search(r"tidy-jackal +crashed +3 +exited with 3", shown) and re.search(
        r"calm-ibis +stopped by you", shown
    )
    assert "last output of agent calm-ibis" in shown and shown.rstrip().endswith("the last line")
    bare = text(task_view(TaskDetails(task_pb2.Task(id="t9", name="alone"))))
    assert "(nothing)" in bare and "reason" not in bare and "next attempt" not in bare


def test_agent_show_says_how_the_run_ended() -> None:
    agent = agent_pb2.Agent(
        id="a1", name="tidy-jackal", status=agent_pb2.AGENT_STATUS_STOPPED, outcome=agent_pb2.AGENT_OUTCOME_FAILED
    )
    agent.error = "tests failed"
    agent.exit_code = 0
    shown = text(agent_view(agent))
    assert "tidy-jackal failed a1" in shown and "tests failed" in shown and re.search(r"exit code +0", shown)


def test_clock_says_how_far_ahead() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert clock(stamp(now + timedelta(seconds=25)), now).endswith("(in 25s)")
    assert "(in" not in clock(stamp(now - timedelta(seconds=5)), now)
    assert clock(Timestamp(), now) == ""


def test_merge_names_the_commit_per_project() -> None:
    merged = phase_pb2.Phase(name="Schema", merge_base="b" * 40, merge_commits={"p1": "c" * 40, "p2": "d" * 40})
    assert merged_line(merged, {"p1": "app", "p2": "api"}) == f"phase Schema merged: api {'d' * 10}, app {'c' * 10}"
    assert "b" * 10 not in merged_line(merged, {})
    assert merged_line(phase_pb2.Phase(name="Schema", merge_base="b" * 40), {}) == "phase Schema merged"


def test_watch_says_why_a_task_is_blocked() -> None:
    found = initiative_pb2.Initiative(id="i1", name="Auth")
    phase = phase_pb2.Phase(id="p1", name="Schema", status=phase_pb2.PHASE_STATUS_IN_PROGRESS, reason="")
    blocked = task_pb2.Task(id="t1", phase_id="p1", name="Users", status=task_pb2.TASK_STATUS_BLOCKED, reason=CRASH)
    board = Board(found, [phase], [blocked], [])
    reason = board.needs_a_person()
    assert (
        reason.startswith("task Users (t1) is blocked (agent crashed: exited with 3)") and "cw task show t1" in reason
    )
    assert "Users blocked t1 agent crashed: exited with 3" in text(board.render())


def test_stream_notices_say_where_and_from_which_event() -> None:
    lost = StreamState(False, 41, UnavailableError(grpc.StatusCode.UNAVAILABLE, "Connection refused"))
    assert stream_notice("store", "127.0.0.1:1", lost).startswith(
        "the store at 127.0.0.1:1 is unreachable (Connection refused); reconnecting, from event 41 on"
    )
    back = stream_notice("store", "127.0.0.1:1", StreamState(True, 41))
    assert back == "reconnected to the store at 127.0.0.1:1; resuming after event 41"


def test_event_lines_show_whole_numbers_as_such() -> None:
    event = event_pb2.Event(sequence=7, type="agent:crashed", task_id="t1")
    event.details.update({"exit_code": 3, "ratio": 0.5})
    line = event_line(event)
    assert line.startswith("     7 ") and '"exit_code": 3,' in line and '"ratio": 0.5' in line


def test_an_update_s_line_shows_each_changed_field_with_its_new_value() -> None:
    event = event_pb2.Event(sequence=8, type="phase:updated", phase_id="p1")
    values = {"reason": "merge conflict in a.py\nand more", "update_time": "2026-01-01T00:00:00Z"}
    event.details.update({"id": "p1", "changed": ["reason"], "values": values})
    line = event_line(event)
    assert '"changed": {"reason": "merge conflict in a.py"}' in line
    assert "update_time" not in line and "and more" not in line
    created = event_pb2.Event(sequence=9, type="task:created", task_id="t1")
    created.details.update({"id": "t1", "status": "TASK_STATUS_PENDING", "values": {"description": "long text"}})
    assert "long text" not in event_line(created) and "TASK_STATUS_PENDING" in event_line(created)


def test_every_verb_takes_json_after_it() -> None:
    def verbs(group: click.Group) -> list[click.Command]:
        """Every command under `group`, those imported on first use (clients/cli/verbs.py) too."""
        context = click.Context(group)
        found: list[click.Command] = []
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            assert command is not None, name
            found += verbs(command) if isinstance(command, click.Group) else [command]
        return found

    commands = verbs(cli)
    assert len(commands) > 20
    for command in commands:
        assert isinstance(command, CwCommand), command.name
        assert any("--json" in param.opts for param in command.params), command.name
