"""Providers, in-process (tests/fakes/): the real choice of a task's provider and the store's
rule on an account's cap, with the tasks controller and the in-memory store; no process, no git."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from store_service.domain.progress import LIVE_AGENT
from tests.fakes.orchestrator import InProcess
from tests.fakes.store import FakeStore, Move, status_name


def _live_per_account(move: Move) -> dict[str, int]:
    live: dict[str, int] = {}
    for agent in move.tables.rows["agent"].values():
        if agent.account_id and status_name("agent", agent) in LIVE_AGENT:
            live[agent.account_id] = live.get(agent.account_id, 0) + 1
    return live


async def _until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls a condition of the in-memory state (each check yields to the controllers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _setup(store: FakeStore, tasks: int) -> tuple[phase_pb2.Phase, list[task_pb2.Task]]:
    initiative = store.create_initiative("providers")
    store.add_project(initiative.id, "app")
    phase = store.create_phase(initiative.id, "work")
    return phase, [store.create_task(phase, f"t{n}") for n in range(tasks)]


def _task(store: FakeStore, task: task_pb2.Task) -> task_pb2.Task:
    return store.tables.rows["task"][task.id]


def _agents_of(store: FakeStore, task: task_pb2.Task) -> list[agent_pb2.Agent]:
    return [agent for agent in store.tables.rows["agent"].values() if agent.task_id == task.id]


def test_an_account_capped_at_one_runs_one_agent_and_the_next_task_waits_for_it(tmp_path: Path) -> None:
    store = FakeStore()
    account = store.create_account("scripted", "one@x", cap=1)
    phase, tasks = _setup(store, 2)

    async def main() -> None:
        async with InProcess(tmp_path, store) as orchestrator:
            await orchestrator.settled()
            await orchestrator.approve(phase.id)
            await _until("one run", lambda: len(orchestrator.running()) == 1)
            waiting = next(task for task in tasks if not _agents_of(store, task))
            await _until("the other task's reason", lambda: bool(_task(store, waiting).reason))
            assert _task(store, waiting).reason == "waiting for a free account of provider 'scripted'"
            assert _task(store, waiting).status == task_pb2.TASK_STATUS_PENDING
            await orchestrator.finish(orchestrator.running()[0].id)
            await _until("the second run", lambda: bool(_agents_of(store, waiting)))
            await orchestrator.finish(orchestrator.running()[0].id)
            await orchestrator.settled(timeout=15.0)

    asyncio.run(main())
    assert all(_task(store, task).status == task_pb2.TASK_STATUS_COMPLETED for task in tasks)
    assert {agent.account_id for agent in store.tables.rows["agent"].values()} == {account.id}
    assert all(_live_per_account(move).get(account.id, 0) <= 1 for move in store.history)
    assert store.refusals == []


def test_the_last_slot_taken_by_another_orchestrator_meanwhile_refuses_the_start(tmp_path: Path) -> None:
    """Between the account's choice and the start's write (git, in the real start), another
    orchestrator starts an agent on the same account: the store refuses our start (NOT_READY),
    the task waits for the account and starts once that agent ends; never two on the account."""
    store = FakeStore()
    account = store.create_account("scripted", "one@x", cap=1)
    phase, (mine,) = _setup(store, 1)
    elsewhere = store.create_phase(phase.initiative_id, "elsewhere")
    theirs = store.create_task(elsewhere, "theirs")
    taken: list[agent_pb2.Agent] = []

    async def another_orchestrator_takes_the_slot() -> None:
        if taken:
            return
        agent = agent_pb2.Agent(
            name="elsewhere-agent",
            task_id=theirs.id,
            account_id=account.id,
            worktree_id="(starting)",
            provider="scripted",
            status=agent_pb2.AGENT_STATUS_RUNNING,
            orchestrator="another",
        )
        answer = await store.append([], changes(agent_pb2.CreateAgentRequest(agent=agent)))
        taken.append(answer.rows[0].agent)

    async def main() -> None:
        async with InProcess(tmp_path, store) as orchestrator:
            await orchestrator.settled()
            orchestrator.launches.before_write = another_orchestrator_takes_the_slot
            await orchestrator.approve(phase.id)
            await _until("the refusal", lambda: bool(store.refusals))
            await _until("the task's reason", lambda: bool(_task(store, mine).reason))
            assert _task(store, mine).reason == "waiting for a free account of provider 'scripted'"
            assert _agents_of(store, mine) == []
            ended = update(store.tables.rows["agent"][taken[0].id], status=agent_pb2.AGENT_STATUS_STOPPED)
            await store.append([], changes(ended))
            await _until("our run", lambda: bool(orchestrator.running()))
            await orchestrator.finish(orchestrator.running()[0].id)
            await orchestrator.settled(timeout=15.0)

    asyncio.run(main())
    assert len(store.refusals) == 1 and "runs at most 1 agent(s) at once" in store.refusals[0]
    assert "'elsewhere-agent' (RUNNING)" in store.refusals[0]
    assert _task(store, mine).status == task_pb2.TASK_STATUS_COMPLETED
    assert all(_live_per_account(move).get(account.id, 0) <= 1 for move in store.history)


def test_every_account_resting_moves_the_task_to_the_fallback_and_it_says_so(tmp_path: Path) -> None:
    store = FakeStore()
    account = store.create_account("scripted", "only@x")
    phase, (task,) = _setup(store, 1)
    initiative: initiative_pb2.Initiative = store.tables.rows["initiative"][phase.initiative_id]

    async def main() -> None:
        async with InProcess(tmp_path, store, providers=("scripted", "spare")) as orchestrator:
            # Through the store's log, as a person's update does: the cache takes it from its event.
            await store.append([], changes(update(initiative, fallback_providers=["spare"])))
            await orchestrator.settled()
            store.rest_account(account.id, orchestrator.ctx.clock() + timedelta(hours=1))
            await orchestrator.settled()
            await orchestrator.approve(phase.id)
            await _until("the run", lambda: bool(orchestrator.running()))
            (agent,) = orchestrator.running()
            assert (agent.provider, agent.account_id) == ("spare", "")
            reason = _task(store, task).reason
            assert reason.startswith(
                "moved from provider scripted to spare: every account of scripted is resting until"
            )
            assert _task(store, task).retry_count == 0
            await orchestrator.finish(agent.id)
            await orchestrator.settled()

    asyncio.run(main())
    done = _task(store, task)
    assert (done.status, done.reason) == (task_pb2.TASK_STATUS_COMPLETED, "")
    assert store.refusals == []
