"""How the CLI shows things: pure functions from messages to text, no calls (so they are unit-tested
with messages made by hand).

Importing this module imports neither rich nor the messages it shows (a command prints JSON without
them: tests/e2e/test_cli_imports.py): each is imported when first used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from clients.cli.app import message_dict
from clients.sdk.calls import StreamState, enum_name
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp
    from rich.table import Table

    from cw.store.v1 import agent_pb2, event_pb2, phase_pb2, task_pb2
else:
    agent_pb2, phase_pb2, task_pb2 = lazy_modules("cw.store.v1", "agent_pb2", "phase_pb2", "task_pb2")

STATUS_STYLE = {
    "completed": "green",
    "done": "green",
    "in_progress": "yellow",
    "blocked": "red",
    "pending_review": "magenta",
    "approved": "cyan",
    "running": "yellow",
    "waiting_for_input": "magenta",
    "crashed": "red",
    "failed": "red",
    "stopped by you": "yellow",
    "rate limited": "yellow",
    "never started": "dim",
}
REASON_WIDTH = 60


@cache
def outcome_labels() -> dict[int, str]:
    """How a run ended, in words, by AgentOutcome."""
    return {
        agent_pb2.AGENT_OUTCOME_DONE: "done",
        agent_pb2.AGENT_OUTCOME_FAILED: "failed",
        agent_pb2.AGENT_OUTCOME_CRASHED: "crashed",
        agent_pb2.AGENT_OUTCOME_STOPPED: "stopped by you",
        agent_pb2.AGENT_OUTCOME_RATE_LIMITED: "rate limited",
        agent_pb2.AGENT_OUTCOME_NEVER_STARTED: "never started",
    }


def is_live(agent: agent_pb2.Agent) -> bool:
    """RUNNING or WAITING_FOR_INPUT: its process lives (or will be resumed)."""
    return agent.status in (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)


def escape(text: str) -> str:
    """`text` shown as it is in rich markup (rich.markup.escape, imported on first use)."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def table(*columns: str) -> Table:
    from rich.table import Table

    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        if column == "ID" or column.endswith(" ID") or column in ("TASK", "PHASE"):
            grid.add_column(column, no_wrap=True, min_width=21)
        else:
            grid.add_column(column)
    return grid


def short(text: str, width: int = REASON_WIDTH) -> str:
    """The first non-empty line, cut to `width` characters with an ellipsis: for table cells."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def agent_state(agent: agent_pb2.Agent) -> str:
    """What a person wants to know about an agent: running or waiting while it lives, and once it
    ended, how (done, crashed, stopped by you...) rather than the bare status `stopped`."""
    if not is_live(agent) and agent.outcome in outcome_labels():
        return outcome_labels()[agent.outcome]
    return enum_name(agent_pb2.AgentStatus, agent.status)


def clock(stamp: Timestamp, now: datetime | None = None) -> str:
    """`14:03:07 (in 25s)` for a time to come, `14:03:07` otherwise; "" when unset."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    when = stamp.ToDatetime(tzinfo=UTC)
    ahead = int((when - (now or datetime.now(UTC))).total_seconds())
    shown = when.astimezone().strftime("%H:%M:%S")
    return f"{shown} (in {ahead}s)" if ahead > 0 else shown


def age(created: Timestamp, now: datetime | None = None) -> str:
    seconds = int((now or datetime.now(UTC)).timestamp() - created.seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def after_note(names: Sequence[str]) -> str:
    """` after: Schema, API` for a phase or task with `--after` edges; "" otherwise."""
    return f" [dim]after: {escape(', '.join(names))}[/]" if names else ""


def reason_note(reason: str) -> str:
    return f" [italic]{escape(short(reason))}[/]" if reason else ""


def waits_for(
    edges: Iterable[task_pb2.TaskDependency] | Iterable[phase_pb2.PhaseDependency], names: Mapping[str, str]
) -> dict[str, list[str]]:
    """Per dependent id, the names (or ids, when unknown) of what it waits for."""
    found: dict[str, list[str]] = {}
    for edge in edges:
        dependent, target = _ends(edge)
        found.setdefault(dependent, []).append(names.get(target, target))
    return found


def _ends(edge: task_pb2.TaskDependency | phase_pb2.PhaseDependency) -> tuple[str, str]:
    if isinstance(edge, task_pb2.TaskDependency):
        return edge.task_id, edge.depends_on_task_id
    return edge.phase_id, edge.depends_on_phase_id


def merged_line(phase: phase_pb2.Phase, project_names: Mapping[str, str]) -> str:
    """What `cw phase merge` made: the merge commit on the initiative branch, per project."""
    commits = ", ".join(
        f"{escape(project_names.get(project_id, project_id))} {commit[:10]}"
        for project_id, commit in sorted(phase.merge_commits.items(), key=lambda item: project_names.get(item[0], ""))
    )
    return f"phase {escape(phase.name)} merged: {commits}" if commits else f"phase {escape(phase.name)} merged"


def last_lines(output: bytes, count: int = 10) -> list[str]:
    return output.decode("utf-8", "replace").rstrip("\n").splitlines()[-count:] if output else []


def event_line(event: event_pb2.Event) -> str:
    when = event.time.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")
    subject = " ".join(
        f"{name}={value}"
        for name, value in (("phase", event.phase_id), ("task", event.task_id), ("agent", event.agent_id))
        if value
    )
    details = json.dumps(shown_details(message_dict(event.details)), sort_keys=True)
    details = details if event.details.fields else ""
    return f"{event.sequence:>6} {when} {event.type:<26} {subject} {details}".rstrip()


def shown_details(details: dict[str, Any]) -> dict[str, Any]:
    """An event's details for one line: an update's changed fields with their new values (a text
    cut short: `changed: {"reason": "merge conflict in a.py"}`); a created row's values are the
    whole row, left to `cw events --json` and the row's own `show`."""
    values = details.get("values")
    if not isinstance(values, dict):
        return details  # an event of the orchestrator's own, or of before events carried values
    shown = {key: value for key, value in details.items() if key != "values"}
    if "changed" in details:
        shown["changed"] = {
            name: short(value) if isinstance(value, str) else value
            for name, value in values.items()
            if name != "update_time"
        }
    return shown


def stream_notice(what: str, address: str, state: StreamState) -> str:
    """One line for a stream lost or back: people see an outage instead of a frozen screen."""
    if state.connected:
        return f"reconnected to the {what} at {address}; resuming after event {state.after_sequence}"
    why = state.error.message if state.error else "the stream ended"
    return (
        f"the {what} at {address} is unreachable ({why}); reconnecting, "
        f"from event {state.after_sequence} on (Ctrl-C stops)"
    )


def usage_line(used: agent_pb2.Usage) -> str:
    """One line of usage for people: the four counts and the cost."""
    return (
        f"{used.input_tokens:,} in, {used.output_tokens:,} out, {used.cache_read_tokens:,} cache read, "
        f"{used.cache_write_tokens:,} cache write, ${used.cost_usd:,.4f}"
    )


def budget_line(tokens_used: int, cost_usd: float, budget_tokens: int | None, budget_usd: float | None) -> str:
    """What a budget allows and how much of it is used; empty without a budget."""
    parts = []
    if budget_tokens is not None:
        parts.append(f"{tokens_used:,} of {budget_tokens:,} tokens")
    if budget_usd is not None:
        parts.append(f"${cost_usd:,.4f} of ${budget_usd:,.4f}")
    return ", ".join(parts)
