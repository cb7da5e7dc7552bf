"""The takeovers controller in-process (tests/fakes/whole.py): the running agent of an orchestrator
whose lease lapsed is settled here as a crashed attempt, saying who took it over; nothing is taken
from an orchestrator that renewed its lease meanwhile, nor a waiting agent. No server, no process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.cluster import policy
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore
from tests.fakes.whole import NAME, Whole

GONE = "gone"


def _running_elsewhere(
    store: FakeStore, status: agent_pb2.AgentStatus.ValueType = agent_pb2.AGENT_STATUS_RUNNING
) -> tuple[task_pb2.Task, agent_pb2.Agent]:
    """A task IN_PROGRESS whose agent runs under the orchestrator `gone`."""
    initiative = store.create_initiative("auth")
    store.add_project(initiative.id, "app")
    phase = store.create_phase(initiative.id, "schema")
    task = store.create_task(phase, "users")
    store.set_phase_status(phase.id, phase_pb2.PHASE_STATUS_IN_PROGRESS)
    asyncio.run(store.append([], changes(update(task, status=task_pb2.TASK_STATUS_IN_PROGRESS))))
    agent = store.create_agent(
        agent_pb2.Agent(
            name="far-away",
            task_id=task.id,
            initiative_id=initiative.id,
            status=status,
            orchestrator=GONE,
            provider="scripted",
            session_id="s1",
        )
    )
    return task, agent


async def _leases_read(whole: Whole) -> None:
    """Membership's look at the leases, told to its listeners (the takeovers controller among them)."""
    leases, read_time = await whole.ctx.leases.listing(policy.ORCHESTRATOR_LEASES)
    peers = policy.peers_from(NAME, leases, read_time)
    for listener in whole.orchestrator.membership.listeners:
        listener(peers)
    await whole.settled()


def test_the_run_of_an_orchestrator_whose_lease_lapsed_is_a_crashed_attempt_taken_over(tmp_path: Path) -> None:
    store = FakeStore()
    task, agent = _running_elsewhere(store)
    store.hold_lease(GONE, -1.0)
    store.hold_lease(NAME, 60.0)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.settled()
            await _leases_read(whole)
            (again,) = whole.running()  # the retry runs here
            assert again.task_id == task.id and again.id != agent.id and again.orchestrator == NAME

    asyncio.run(main())
    settled = store.tables.rows["agent"][agent.id]
    assert settled.status == agent_pb2.AGENT_STATUS_CRASHED
    assert f"its orchestrator {GONE} stopped renewing its lease" in settled.error
    assert store.tables.rows["task"][task.id].retry_count == 1
    (taken,) = [e for e in store.events if e.type == "agent:taken_over"]
    assert (taken.agent_id, dict(taken.details)) == (agent.id, {"orchestrator": GONE, "by": NAME})


def test_nothing_is_taken_from_an_orchestrator_that_renewed_its_lease_since_it_was_read(tmp_path: Path) -> None:
    """The leases said `gone` lapsed; read again before the write, it holds its lease: its run stays."""
    store = FakeStore()
    _, agent = _running_elsewhere(store)
    store.hold_lease(GONE, -1.0)
    store.hold_lease(NAME, 60.0)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.settled()
            leases, read_time = await whole.ctx.leases.listing(policy.ORCHESTRATOR_LEASES)
            store.hold_lease(GONE, 60.0)  # back, after our read of the leases
            peers = policy.peers_from(NAME, leases, read_time)
            for listener in whole.orchestrator.membership.listeners:
                listener(peers)
            await whole.settled()

    asyncio.run(main())
    assert store.tables.rows["agent"][agent.id].status == agent_pb2.AGENT_STATUS_RUNNING
    assert not [e for e in store.events if e.type == "agent:taken_over"]


def test_a_waiting_agent_of_a_lapsed_orchestrator_is_not_taken_over(tmp_path: Path) -> None:
    store = FakeStore()
    _, agent = _running_elsewhere(store, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
    store.hold_lease(GONE, -1.0)
    store.hold_lease(NAME, 60.0)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.settled()
            await _leases_read(whole)
            # Its row changes while it waits (a question of its answered): still not taken.
            waiting = store.tables.rows["agent"][agent.id]
            await store.append([], changes(update(waiting, pending_questions='[{"id": "q1", "question": "?"}]')))
            await whole.settled()

    asyncio.run(main())
    assert store.tables.rows["agent"][agent.id].status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert not [e for e in store.events if e.type == "agent:taken_over"]
