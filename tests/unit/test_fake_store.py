"""The in-memory store keeps what the orchestrator relies on from the real one: a change built from
an outdated row is refused (Stale), a move the progress rules forbid is refused (NotReady, the
SQL store's very words), a refused transaction writes nothing, and the log is numbered in order."""

from __future__ import annotations

import asyncio

import pytest

from cw.store.v1 import event_pb2, phase_pb2, task_pb2
from orchestrator_service.store_client import NotReady, Stale, changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore


def _phase_with_task(store: FakeStore) -> tuple[phase_pb2.Phase, task_pb2.Task]:
    initiative = store.create_initiative("auth")
    phase = store.create_phase(initiative.id, "schema")
    return phase, store.create_task(phase, "users")


def test_a_change_built_from_an_outdated_row_is_stale_and_writes_nothing() -> None:
    store = FakeStore()
    _, task = _phase_with_task(store)
    asyncio.run(store.append([], changes(update(task, reason="first"))))
    logged = len(store.events)
    with pytest.raises(Stale):
        asyncio.run(store.append([event_pb2.Event(type="task:noted")], changes(update(task, reason="second"))))
    assert (store.tables.rows["task"][task.id].reason, len(store.events)) == ("first", logged)


def test_a_phase_to_review_with_a_task_not_done_is_not_ready_in_the_sql_stores_words() -> None:
    store = FakeStore()
    phase, _ = _phase_with_task(store)
    with pytest.raises(NotReady, match=r"1 of its 1 tasks are not COMPLETED and merged: 'users' \(PENDING\)"):
        asyncio.run(store.append([], changes(update(phase, status=phase_pb2.PHASE_STATUS_PENDING_REVIEW))))
    assert store.tables.rows["phase"][phase.id].status == phase_pb2.PHASE_STATUS_PENDING
    assert store.history == []


def test_the_rules_judge_the_state_the_whole_transaction_leaves() -> None:
    """A task's completion and merge, then its phase's review, in one AppendEvent."""
    store = FakeStore()
    phase, task = _phase_with_task(store)
    done = update(task, status=task_pb2.TASK_STATUS_COMPLETED, merge_time=task.create_time)
    review = update(phase, status=phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    answer = asyncio.run(store.append([], changes(done, review)))
    assert answer.last_sequence == len(store.events) == store.events[-1].sequence
    assert [event.sequence for event in store.events] == list(range(1, len(store.events) + 1))
    assert [(move.kind, move.status, move.problem) for move in store.history] == [("phase", "pending_review", None)]


def test_without_enforcing_the_history_still_names_what_was_early() -> None:
    store = FakeStore(enforce=False)
    phase, _ = _phase_with_task(store)
    asyncio.run(store.append([], changes(update(phase, status=phase_pb2.PHASE_STATUS_PENDING_REVIEW))))
    (move,) = store.history
    assert move.problem is not None and "'users' (PENDING)" in move.problem
