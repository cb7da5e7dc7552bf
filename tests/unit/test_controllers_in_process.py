"""The phases, tasks and initiatives controllers, in-process against the in-memory store
(tests/fakes/): what each decides, in milliseconds, with no server, git or agent process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.cache.state import RowKind
from orchestrator_service.controllers.context import utc_now
from orchestrator_service.controllers.phases import NO_PROJECTS, NO_TASKS
from orchestrator_service.dispatch import OutcomeKind
from tests.fakes.orchestrator import InProcess
from tests.fakes.store import FakeStore, Move

Scenario = Callable[[InProcess], Awaitable[None]]


@dataclass
class Plan:
    initiative: initiative_pb2.Initiative
    phases: list[phase_pb2.Phase]
    tasks: dict[str, task_pb2.Task]


def _plan(store: FakeStore, phases: dict[str, dict[str, list[str]]], after: dict[str, list[str]] | None = None) -> Plan:
    """An initiative with a project, and phases of tasks by name (`{"p1": {"a": [], "b": ["a"]}}`:
    b depends on a); `after` gives the phases each phase depends on."""
    initiative = store.create_initiative("auth")
    store.add_project(initiative.id, "app")
    made: dict[str, phase_pb2.Phase] = {}
    tasks: dict[str, task_pb2.Task] = {}
    for phase_name, phase_tasks in phases.items():
        needed = [made[name].id for name in (after or {}).get(phase_name, [])]
        made[phase_name] = store.create_phase(initiative.id, phase_name, needed)
        for task_name, depends_on in phase_tasks.items():
            tasks[task_name] = store.create_task(made[phase_name], task_name, [tasks[d].id for d in depends_on])
    return Plan(initiative, list(made.values()), tasks)


def _run(tmp_path: Path, store: FakeStore, scenario: Scenario) -> None:
    async def main() -> None:
        async with InProcess(tmp_path, store) as orchestrator:
            await orchestrator.settled()
            await scenario(orchestrator)

    asyncio.run(main())


def _phase(store: FakeStore, phase: phase_pb2.Phase) -> phase_pb2.Phase:
    return store.tables.rows["phase"][phase.id]


def _task(store: FakeStore, task: task_pb2.Task) -> task_pb2.Task:
    return store.tables.rows["task"][task.id]


def _moves(store: FakeStore, kind: str) -> list[Move]:
    return [move for move in store.history if move.kind == kind]


async def _finish_all(orchestrator: InProcess) -> int:
    """Ends every run the orchestrator knows of, then waits for the controllers; how many ended."""
    ended = 0
    for agent in orchestrator.running():
        ended += await orchestrator.finish(agent.id)
    await orchestrator.settled()
    return ended


# ---- phases -------------------------------------------------------------------------------------


def test_an_approved_phase_runs_its_tasks_and_goes_to_review_once_all_are_done_and_merged(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": [], "sessions": []}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        assert _phase(store, plan.phases[0]).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
        assert {agent.task_id for agent in orchestrator.running()} == {t.id for t in plan.tasks.values()}
        await orchestrator.finish(orchestrator.running()[0].id)
        await orchestrator.settled()
        assert _phase(store, plan.phases[0]).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
        await _finish_all(orchestrator)

    _run(tmp_path, store, scenario)
    assert _phase(store, plan.phases[0]).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW
    assert all(_task(store, t).HasField("merge_time") for t in plan.tasks.values())
    assert [move.status for move in _moves(store, "phase")] == ["pending_review"]
    assert store.refusals == []


def test_a_phase_without_tasks_never_goes_to_review_and_says_why(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"empty": {}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()

    _run(tmp_path, store, scenario)
    phase = _phase(store, plan.phases[0])
    assert (phase.status, phase.reason) == (phase_pb2.PHASE_STATUS_IN_PROGRESS, NO_TASKS)
    assert _moves(store, "phase") == []


def test_a_phase_of_an_initiative_without_projects_waits_with_its_reason(tmp_path: Path) -> None:
    store = FakeStore()
    initiative = store.create_initiative("bare")
    phase = store.create_phase(initiative.id, "alone")
    store.create_task(phase, "work")

    async def scenario(orchestrator: InProcess) -> None:
        store.set_phase_status(phase.id, phase_pb2.PHASE_STATUS_APPROVED)  # ApprovePhase refuses; a person's write
        await orchestrator.settled()

    _run(tmp_path, store, scenario)
    assert (_phase(store, phase).status, _phase(store, phase).reason) == (phase_pb2.PHASE_STATUS_APPROVED, NO_PROJECTS)
    assert _moves(store, "task") == []


def test_a_phase_starts_only_once_the_phases_it_depends_on_are_completed(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": []}, "api": {"login": []}}, after={"api": ["schema"]})
    schema, api = plan.phases

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(schema.id)
        await orchestrator.approve(api.id)
        await orchestrator.settled()
        assert _phase(store, api).status == phase_pb2.PHASE_STATUS_APPROVED
        assert _phase(store, api).reason == "waits for phases: schema"
        await _finish_all(orchestrator)
        assert _phase(store, api).status == phase_pb2.PHASE_STATUS_APPROVED  # schema in review, not merged
        assert await orchestrator.merge_phase(schema.id)
        await orchestrator.settled()
        assert _phase(store, api).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
        assert [agent.task_id for agent in orchestrator.running()] == [plan.tasks["login"].id]

    _run(tmp_path, store, scenario)


def test_a_phase_with_a_blocked_task_is_blocked(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": [], "sessions": []}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        users = plan.tasks["users"].id
        for _attempt in range(4):  # the first run and its three retries
            (agent,) = [a for a in orchestrator.running() if a.task_id == users]
            assert await orchestrator.finish(agent.id, OutcomeKind.CRASH)
            await orchestrator.settled()

    _run(tmp_path, store, scenario)
    assert _task(store, plan.tasks["users"]).status == task_pb2.TASK_STATUS_BLOCKED
    assert _phase(store, plan.phases[0]).status == phase_pb2.PHASE_STATUS_BLOCKED


# ---- tasks --------------------------------------------------------------------------------------


def test_a_task_starts_only_after_its_dependencies_completed(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": [], "sessions": ["users"], "tokens": ["sessions", "users"]}})
    started: list[str] = []

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        while orchestrator.running():
            started.extend(agent.task_id for agent in orchestrator.running())
            await _finish_all(orchestrator)

    _run(tmp_path, store, scenario)
    assert started == [plan.tasks[name].id for name in ("users", "sessions", "tokens")]
    assert store.refusals == []


def test_a_crashed_run_is_retried_by_a_new_run(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": []}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        (first,) = orchestrator.running()
        assert await orchestrator.finish(first.id, OutcomeKind.CRASH)
        await orchestrator.settled()
        (second,) = orchestrator.running()
        assert second.id != first.id
        assert _task(store, plan.tasks["users"]).retry_count == 1

    _run(tmp_path, store, scenario)


def test_no_more_runs_than_max_agents(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"wide": {f"t{n}": [] for n in range(6)}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        assert len(orchestrator.running()) == orchestrator.ctx.settings.max_agents == 4
        await _finish_all(orchestrator)
        assert len(orchestrator.running()) == 2

    _run(tmp_path, store, scenario)


# ---- initiatives ----------------------------------------------------------------------------------


def test_an_initiative_awaits_review_once_every_phase_is_merged(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": []}, "api": {"login": []}})

    async def scenario(orchestrator: InProcess) -> None:
        for phase in plan.phases:
            await orchestrator.approve(phase.id)
        await orchestrator.settled()
        await _finish_all(orchestrator)
        assert await orchestrator.merge_phase(plan.phases[0].id)
        await orchestrator.settled()
        assert store.tables.rows["initiative"][plan.initiative.id].status == initiative_pb2.INITIATIVE_STATUS_ACTIVE
        assert await orchestrator.merge_phase(plan.phases[1].id)
        await orchestrator.settled()

    _run(tmp_path, store, scenario)
    initiative = store.tables.rows["initiative"][plan.initiative.id]
    assert initiative.status == initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW
    assert [move.status for move in _moves(store, "initiative")] == ["pending_review"]


def test_an_initiative_stays_active_while_a_phase_was_never_approved(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": []}, "later": {"docs": []}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        await _finish_all(orchestrator)
        assert await orchestrator.merge_phase(plan.phases[0].id)
        await orchestrator.settled()

    _run(tmp_path, store, scenario)
    assert store.tables.rows["initiative"][plan.initiative.id].status == initiative_pb2.INITIATIVE_STATUS_ACTIVE
    assert _moves(store, "initiative") == []


# ---- a lagging feed (README.md, "Decisions a lagging cache cannot make wrong") ---------------------


@pytest.mark.parametrize("carry_values", [True, False], ids=["events-with-values", "events-of-before"])
def test_a_phase_approved_while_the_feed_lags_waits_for_its_tasks(tmp_path: Path, carry_values: bool) -> None:
    """A lagging feed, in-process: while the feed works through others' burst, a phase of tasks is created
    and approved. The approval's answer reaches the cache at once, the tasks are still in the
    backlog: the controllers wait for the feed (the freshness gate) and nothing moves early.
    Whether the feed builds the rows from the events' values or reads them (older events)."""
    store = FakeStore()
    store.carry_values = carry_values
    initiative = store.create_initiative("auth")
    store.add_project(initiative.id, "app")

    async def main() -> None:
        released = asyncio.Event()

        async def held() -> None:
            await released.wait()

        async with InProcess(tmp_path, store) as orchestrator:
            await orchestrator.settled()  # the initiative and its project are cached
            orchestrator.feed.pause = held
            others = store.create_phase(initiative.id, "others")
            for n in range(200):
                store.create_task(others, f"other{n}")
            phase = store.create_phase(initiative.id, "burst")
            tasks: list[task_pb2.Task] = []
            for n in range(6):
                tasks.append(store.create_task(phase, f"t{n}", [tasks[n - 3].id] if n >= 3 else []))
            await orchestrator.approve(phase.id)
            for _turn in range(50):
                await asyncio.sleep(0)
            # Nothing decided from a cache behind the approval: the phase is not even started.
            assert _phase(store, phase).status == phase_pb2.PHASE_STATUS_APPROVED
            released.set()
            await orchestrator.settled()
            assert _phase(store, phase).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
            assert {agent.task_id for agent in orchestrator.running()} == {task.id for task in tasks[:3]}
            while orchestrator.running():
                await _finish_all(orchestrator)
            assert _phase(store, phase).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW

    asyncio.run(main())
    assert [move for move in store.history if move.problem] == []
    assert store.refusals == []


@pytest.mark.parametrize("carry_values", [True, False], ids=["events-with-values", "events-of-before"])
def test_a_task_added_to_a_running_phase_does_not_start_before_its_dependency(
    tmp_path: Path, carry_values: bool
) -> None:
    """The feed cached a new task, then read its dependencies: a dispatch in between saw a task
    depending on nothing and started it (the store refused it: NOT_READY). The feed now reads the
    dependencies first, so the orchestrator itself does not try (no refusal)."""
    store = FakeStore()
    store.carry_values = carry_values
    plan = _plan(store, {"schema": {"users": []}})

    async def slow_edges(method: str) -> None:
        for _turn in range(200 if method == "task_dependencies" else 0):
            await asyncio.sleep(0)

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        (users,) = orchestrator.running()
        store.read_pause = slow_edges
        sessions = store.create_task(plan.phases[0], "sessions", [plan.tasks["users"].id])
        await orchestrator.settled()
        assert _task(store, sessions).status == task_pb2.TASK_STATUS_PENDING
        await orchestrator.finish(users.id)
        await orchestrator.settled()
        assert [agent.task_id for agent in orchestrator.running()] == [sessions.id]

    _run(tmp_path, store, scenario)
    assert [move for move in store.history if move.problem] == []
    assert store.refusals == []


def test_a_refused_start_waits_for_the_feed_instead_of_trying_again_at_once(tmp_path: Path) -> None:
    """A retry's timer fires while the feed is behind a dependency a person just added: the start
    is refused (NOT_READY). The next decisions wait until the feed has what the store had then,
    rather than starting the same task again and again from the same cache."""
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": [], "sessions": []}})

    async def main() -> None:
        released = asyncio.Event()

        async def held() -> None:
            await released.wait()

        async with InProcess(tmp_path, store, retry_delays=(0.2, 0.2, 0.2), clock=utc_now) as orchestrator:
            await orchestrator.approve(plan.phases[0].id)
            await orchestrator.settled()
            crashed = next(a for a in orchestrator.running() if a.task_id == plan.tasks["sessions"].id)
            assert await orchestrator.finish(crashed.id, OutcomeKind.CRASH)  # retried in 0.2 s
            while orchestrator.feed.backlog:  # the feed has our write: the gate lets decisions pass
                await asyncio.sleep(0)
            orchestrator.feed.pause = held
            store.add_task_dependency(plan.tasks["sessions"].id, plan.tasks["users"].id)
            deadline = time.monotonic() + 5
            while not store.refusals and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # what a loop of refused starts would do meanwhile
            assert len(store.refusals) == 1, store.refusals[:3]
            released.set()
            await orchestrator.settled()
            assert _task(store, plan.tasks["sessions"]).status == task_pb2.TASK_STATUS_PENDING

    asyncio.run(main())
    assert [move for move in store.history if move.problem] == []


# ---- merges -------------------------------------------------------------------------------------------


def test_a_completed_task_is_merged_once_as_a_stored_fact(tmp_path: Path) -> None:
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": [], "sessions": []}})

    async def scenario(orchestrator: InProcess) -> None:
        await orchestrator.approve(plan.phases[0].id)
        await orchestrator.settled()
        users = next(agent for agent in orchestrator.running() if agent.task_id == plan.tasks["users"].id)
        await orchestrator.finish(users.id)
        await orchestrator.settled()
        assert _task(store, plan.tasks["users"]).HasField("merge_time")
        assert not _task(store, plan.tasks["sessions"]).HasField("merge_time")  # still running
        orchestrator.merges.queue.add(plan.tasks["users"].id)  # looked at again: nothing more to do
        await orchestrator.settled()

    _run(tmp_path, store, scenario)
    merged = [stored.task_id for stored in store.events if stored.type == "task:merged"]
    assert merged == [plan.tasks["users"].id]


# ---- orphans --------------------------------------------------------------------------------------


def test_another_orchestrator_s_start_applied_in_half_is_completed_by_the_next_event_without_a_read(
    tmp_path: Path,
) -> None:
    """The cache holds the task IN_PROGRESS of another orchestrator's start but not yet its agent,
    the next event of the same transaction: the orphan check waits for that event rather than
    reading the store's head, and finds the task not orphaned."""
    store = FakeStore()
    plan = _plan(store, {"schema": {"users": []}})
    heads: list[str] = []

    async def counted(method: str) -> None:
        if method == "head_sequence":
            heads.append(method)

    async def scenario(orchestrator: InProcess) -> None:
        store.read_pause = counted
        task = _task(store, plan.tasks["users"])
        half = task_pb2.Task()
        half.CopyFrom(task)
        half.status = task_pb2.TASK_STATUS_IN_PROGRESS
        cache = orchestrator.cache
        cache.put(RowKind.TASK, half)  # the first event of the start: its agent's comes next
        checked = asyncio.create_task(orchestrator.tasks.recover(task.id))
        while not cache.freshness._waiting and not checked.done():  # until it waits for the feed
            await asyncio.sleep(0)
        agent = agent_pb2.Agent(id="a1", task_id=task.id, status=agent_pb2.AGENT_STATUS_RUNNING, orchestrator="b")
        cache.put(RowKind.AGENT, agent)
        cache.freshness.applied_up_to(cache.freshness.applied + 1)
        await checked
        assert heads == []
        assert _task(store, plan.tasks["users"]).status == task_pb2.TASK_STATUS_PENDING  # nothing written

    _run(tmp_path, store, scenario)
