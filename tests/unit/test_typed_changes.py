"""A cache change is typed by its kind and says which fields changed (cache/state.py), and
controllers skip the changes that are none of their business (controllers/phases.py, tasks.py);
a run's outcome kind is an enum that still reads as its value (dispatch.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

from google.protobuf import timestamp_pb2

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.cache.state import (
    DEPENDENCIES,
    AgentChange,
    Cache,
    Change,
    MessageChange,
    RowKind,
    TaskChange,
    change_of,
)
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.phases import PhaseController
from orchestrator_service.controllers.projects import ProjectController
from orchestrator_service.controllers.tasks import TaskController
from orchestrator_service.dispatch import OutcomeKind


def _task(**fields: Any) -> task_pb2.Task:
    base: dict[str, Any] = {"id": "t1", "phase_id": "p1", "status": task_pb2.TASK_STATUS_IN_PROGRESS}
    return task_pb2.Task(**(base | fields))


def _recorded(cache: Cache) -> list[Change]:
    changes: list[Change] = []
    cache.listeners.append(changes.append)
    return changes


class Keys:
    """A work queue that only records the keys asked for."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def add(self, key: str, delay: float = 0.0, reset: bool = False) -> None:
        self.keys.append(key)


def test_a_changed_row_names_only_the_fields_that_differ() -> None:
    cache = Cache()
    changes = _recorded(cache)
    cache.put(RowKind.TASK, _task())
    cache.put(RowKind.TASK, _task(summary="s", merge_time=timestamp_pb2.Timestamp(seconds=5)))
    appeared, updated = changes
    assert {"id", "status", "summary", "phase_id", DEPENDENCIES} <= appeared.fields  # new: every field
    assert updated.fields == {"summary", "merge_time"}
    cache.set_dependencies("t1", ["t0"])
    assert changes[-1].fields == {DEPENDENCIES}
    cache.drop(RowKind.TASK, "t1")
    assert changes[-1].after is None and "status" in changes[-1].fields


def test_a_row_told_again_as_it_is_changed_everything() -> None:
    """The feed asks every controller to look again (after a reconnect) with before is after."""
    task = _task()
    again = change_of(RowKind.TASK, task.id, task, task, True)
    assert isinstance(again, TaskChange) and again.touches("status") and again.touches("summary")


def test_a_change_is_of_its_kind_s_class() -> None:
    agent = agent_pb2.Agent(id="a1", task_id="t1")
    change = change_of(RowKind.AGENT, "a1", None, agent)
    assert isinstance(change, AgentChange) and change.kind is RowKind.AGENT and str(change.kind) == "agent"
    message = MessageChange("m1", None, None, True)
    assert message.kind == RowKind.MESSAGE and message.fields == frozenset()


def _phases() -> tuple[PhaseController, Keys]:
    ctx = cast(Context, SimpleNamespace(cache=Cache()))
    controller = PhaseController(ctx, cast(ProjectController, None))
    keys = Keys()
    controller.queue = cast(Any, keys)
    return controller, keys


def test_a_phase_looks_again_only_when_a_task_moves_in_a_way_it_follows() -> None:
    controller, keys = _phases()
    controller.on_change(TaskChange("t1", _task(), _task(summary="said more")))
    controller.on_change(TaskChange("t1", _task(), _task(retry_count=1)))
    assert keys.keys == []
    controller.on_change(TaskChange("t1", _task(), _task(status=task_pb2.TASK_STATUS_COMPLETED)))
    assert keys.keys == ["p1"]


def test_a_task_moved_to_another_phase_brings_both_phases_back() -> None:
    controller, keys = _phases()
    controller.on_change(TaskChange("t1", _task(), _task(phase_id="p2")))
    assert keys.keys == ["p1", "p2"]


def test_a_task_looks_again_at_its_agents_only_when_one_ends_or_leaves() -> None:
    settings = SimpleNamespace(max_agents=1)
    ctx = cast(Context, SimpleNamespace(cache=Cache(), settings=settings))
    controller = TaskController(ctx, cast(Any, None))
    keys, dispatches = Keys(), Keys()
    controller.queue, controller.dispatch_queue = cast(Any, keys), cast(Any, dispatches)
    running = agent_pb2.Agent(id="a1", task_id="t1", status=agent_pb2.AGENT_STATUS_RUNNING)
    counted = agent_pb2.Agent(id="a1", task_id="t1", status=agent_pb2.AGENT_STATUS_RUNNING, session_id="s")
    controller.on_change(AgentChange("a1", running, counted))
    assert keys.keys == [] and dispatches.keys  # dispatching still looks at every agent change
    stopped = agent_pb2.Agent(id="a1", task_id="t1", status=agent_pb2.AGENT_STATUS_STOPPED)
    controller.on_change(AgentChange("a1", running, stopped))
    assert keys.keys == ["t1"]


def test_a_phase_change_still_reaches_the_phase() -> None:
    controller, keys = _phases()
    phase = phase_pb2.Phase(id="p1", status=phase_pb2.PHASE_STATUS_IN_PROGRESS)
    controller.on_change(change_of(RowKind.PHASE, "p1", None, phase))
    assert keys.keys == ["p1"]


def test_an_outcome_kind_reads_as_its_value() -> None:
    asked = dispatch.classify_exit(0, '{"status": "ask", "to": "b", "question": "q?"}')
    assert asked.kind is OutcomeKind.ASK
    assert json.loads(json.dumps({"status": asked.kind})) == {"status": "ask"}
    assert f"{OutcomeKind.RATE_LIMITED}" == "rate_limited"
    assert dispatch.classify_exit(0, '{"status": "shrug"}').kind is OutcomeKind.ERROR
