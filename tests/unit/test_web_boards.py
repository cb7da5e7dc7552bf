"""What a kept board reads again, from the events since it was read (clients/web/boards.py)."""

from __future__ import annotations

from clients.web.boards import Change, Verdict, verdict
from cw.store.v1 import event_pb2


def _event(kind: str, task_id: str = "") -> event_pb2.Event:
    return event_pb2.Event(sequence=1, type=kind, task_id=task_id)


def test_nothing_on_the_board_changed() -> None:
    quiet = [_event("chat_message:created"), _event("page:updated")]
    assert verdict(quiet, more=False, dependencies_changed=False) == Verdict(Change.NONE)
    assert verdict([], more=False, dependencies_changed=False) == Verdict(Change.NONE)


def test_an_agent_changed_sums_the_usage_again() -> None:
    """An agent's usage is written on its row as it runs (agent:updated): the board's usage is
    summed again, nothing else read."""
    spawned = [_event("agent:spawned", "t1"), _event("agent:updated", "t1")]
    assert verdict(spawned, more=False, dependencies_changed=False) == Verdict(Change.NONE, agents=True)
    with_task = [*spawned, _event("task:updated", "t1")]
    assert verdict(with_task, more=False, dependencies_changed=False) == Verdict(
        Change.TASKS, frozenset({"t1"}), agents=True
    )
    assert verdict([_event("phase:updated")], more=False, dependencies_changed=False).agents  # all read again


def test_only_tasks_changed_reads_those_tasks() -> None:
    events = [_event("task:updated", "t1"), _event("task:dispatched", "t1"), _event("task:created", "t2")]
    assert verdict(events, more=False, dependencies_changed=False) == Verdict(Change.TASKS, frozenset({"t1", "t2"}))


def test_anything_else_reads_the_whole_board() -> None:
    for kind in ("phase:updated", "proposal:created", "initiative:updated", "task_dependency:created"):
        assert verdict([_event(kind)], more=False, dependencies_changed=False).change == Change.EVERYTHING
    assert verdict([_event("task:updated")], more=False, dependencies_changed=False).change == Change.EVERYTHING
    tasks_only = [_event("task:updated", "t1")]
    assert verdict(tasks_only, more=True, dependencies_changed=False).change == Change.EVERYTHING
    assert verdict(tasks_only, more=False, dependencies_changed=True).change == Change.EVERYTHING
