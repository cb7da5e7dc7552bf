"""The agents controller in-process (tests/fakes/whole.py): a run ends as its shim records it (exit
and report), and the controller settles it through its real path, with every other controller
wired as core.py wires them; a person's stop; a task's budget. No server, git or agent process."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.controllers.agent_runs.usage import BUDGET_NOTE
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore
from tests.fakes.whole import OneTask, Whole, one_task

DONE = {"status": "done", "summary": "users table made"}


def _agent(store: FakeStore, agent_id: str) -> agent_pb2.Agent:
    return store.tables.rows["agent"][agent_id]


def _task(store: FakeStore, plan: OneTask) -> task_pb2.Task:
    return store.tables.rows["task"][plan.task.id]


def _events(store: FakeStore, kind: str) -> list[str]:
    return [e.type for e in store.events if e.type.startswith(kind)]


async def _started(whole: Whole, plan: OneTask) -> agent_pb2.Agent:
    await whole.approve(plan.phase.id)
    await whole.settled()
    (agent,) = whole.running()
    return agent


def test_a_run_that_reports_done_completes_its_task_which_is_merged_and_its_phase_goes_to_review(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            assert whole.launched[0].mode == "execute" and "# Task: users" in whole.launched[0].prompt
            whole.end(agent.id, DONE)
            await whole.settled()
            settled = _agent(store, agent.id)
            assert (settled.status, settled.outcome) == (agent_pb2.AGENT_STATUS_STOPPED, agent_pb2.AGENT_OUTCOME_DONE)
            assert whole.running() == []

    asyncio.run(main())
    done = _task(store, plan)
    assert (done.status, done.summary, done.HasField("merge_time")) == (
        task_pb2.TASK_STATUS_COMPLETED,
        "users table made",
        True,
    )
    assert store.tables.rows["phase"][plan.phase.id].status == phase_pb2.PHASE_STATUS_PENDING_REVIEW
    said = _events(store, "agent:")
    assert (said.count("agent:spawned"), said.count("agent:stopped")) == (1, 1)
    assert store.refusals == []


def test_a_run_that_still_runs_is_not_settled(tmp_path: Path) -> None:
    """Queued while its shim has recorded no exit (the watch loop's look): nothing is written."""
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            written = len(store.events)
            whole.orchestrator.agents.queue.add(agent.id)
            await whole.settled()
            assert len(store.events) == written
            assert _agent(store, agent.id).status == agent_pb2.AGENT_STATUS_RUNNING

    asyncio.run(main())


def test_a_failed_attempt_waits_its_delay_before_a_new_run(tmp_path: Path) -> None:
    """Exit 3: the agent CRASHED, the task PENDING with the exit as its reason and its next attempt
    due after the first retry delay; the next run starts once it is due, and then completes."""
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store, retry_delays=(0.3, 0.3, 0.3)) as whole:
            first = await _started(whole, plan)
            ended = datetime.now(UTC)
            whole.end(first.id, exit_code=3)
            await whole.until("the retry scheduled", lambda: _task(store, plan).HasField("next_attempt_time"))
            waiting = _task(store, plan)
            assert (waiting.status, waiting.retry_count) == (task_pb2.TASK_STATUS_PENDING, 1)
            assert waiting.reason.startswith("exited with 3")
            assert waiting.next_attempt_time.ToDatetime(UTC) >= ended + timedelta(seconds=0.3)
            crashed = _agent(store, first.id)
            assert (crashed.status, crashed.error) == (agent_pb2.AGENT_STATUS_CRASHED, "exited with 3")
            assert whole.running() == []
            await whole.until("the second run", lambda: len(whole.launched) == 2)
            (second,) = whole.running()
            assert second.id == whole.launched[1].agent.id != first.id
            assert whole.launched[1].at >= waiting.next_attempt_time.ToDatetime(UTC)
            whole.end(second.id, DONE)
            await whole.settled()

    asyncio.run(main())
    done = _task(store, plan)
    assert (done.status, done.retry_count, done.reason) == (task_pb2.TASK_STATUS_COMPLETED, 1, "")


def test_the_last_failed_attempt_blocks_the_task(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            for _attempt in range(4):  # the first run and its three retries
                whole.end(agent.id, {"status": "error", "error": "tests fail"})
                await whole.settled()
                agent = next(iter(whole.running()), agent)

    asyncio.run(main())
    blocked = _task(store, plan)
    assert (blocked.status, blocked.retry_count) == (task_pb2.TASK_STATUS_BLOCKED, 3)
    assert "tests fail" in blocked.reason
    assert store.tables.rows["phase"][plan.phase.id].status == phase_pb2.PHASE_STATUS_BLOCKED


def test_a_run_whose_process_never_started_spends_no_attempt(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            first = await _started(whole, plan)
            files = AgentFiles.of(tmp_path, first.id)
            (files.control / "exit.json").write_text(json.dumps({"exit_code": 125, "signal": 0, "abandoned": True}))
            whole.orchestrator.agents.queue.add(first.id)
            await whole.settled()
            never = _agent(store, first.id)
            assert (never.status, never.outcome) == (
                agent_pb2.AGENT_STATUS_STOPPED,
                agent_pb2.AGENT_OUTCOME_NEVER_STARTED,
            )
            (second,) = whole.running()
            assert second.id != first.id

    asyncio.run(main())
    assert _task(store, plan).retry_count == 0


def test_questions_make_the_agent_wait_holding_no_slot_and_leave_its_task_in_progress(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)
    questions = [{"id": "q1", "question": "sqlite or postgres?"}]

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            whole.end(agent.id, {"status": "questions", "questions": questions})
            await whole.settled()
            waiting = _agent(store, agent.id)
            assert waiting.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
            assert json.loads(waiting.pending_questions) == questions
            assert whole.running() == []

    asyncio.run(main())
    assert _task(store, plan).status == task_pb2.TASK_STATUS_IN_PROGRESS
    assert "agent:waiting_for_input" in _events(store, "agent:")


def test_a_rate_limited_run_rests_its_account_and_the_task_waits_for_another(tmp_path: Path) -> None:
    store = FakeStore()
    account = store.create_account("scripted", "only@x")
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            assert agent.account_id == account.id
            whole.end(agent.id, {"status": "rate_limited", "retry_after_seconds": 600})
            resting = "every account of scripted is resting until"
            await whole.until("the task's reason", lambda: _task(store, plan).reason.startswith(resting))
            assert whole.running() == []

    asyncio.run(main())
    rested = store.tables.rows["account"][account.id]
    assert rested.is_exhausted
    assert rested.exhausted_until.ToDatetime(UTC) > datetime.now(UTC) + timedelta(seconds=500)
    waiting = _task(store, plan)
    assert (waiting.status, waiting.retry_count) == (task_pb2.TASK_STATUS_PENDING, 0)


def test_a_rate_limited_run_moves_the_task_to_the_next_account_spending_no_attempt(tmp_path: Path) -> None:
    store = FakeStore()
    first = store.create_account("scripted", "first@x", sort_order=0)
    second = store.create_account("scripted", "second@x", sort_order=1)
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            whole.end(agent.id, {"status": "rate_limited", "retry_after_seconds": 600})
            await whole.settled()
            (again,) = whole.running()
            whole.end(again.id, DONE)
            await whole.settled()

    asyncio.run(main())
    done = _task(store, plan)
    assert (done.status, done.retry_count) == (task_pb2.TASK_STATUS_COMPLETED, 0)
    agents = sorted(store.tables.rows["agent"].values(), key=lambda agent: agent.create_time.ToNanoseconds())
    assert [agent.account_id for agent in agents] == [first.id, second.id]
    assert store.tables.rows["account"][first.id].is_exhausted
    assert not store.tables.rows["account"][second.id].is_exhausted


def test_a_stopped_agent_blocks_its_task_and_is_not_run_again(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            stopped = await whole.orchestrator.agents.stop(agent.id)
            assert (stopped.status, stopped.outcome) == (
                agent_pb2.AGENT_STATUS_STOPPED,
                agent_pb2.AGENT_OUTCOME_STOPPED,
            )
            await whole.settled()
            assert whole.running() == []

    asyncio.run(main())
    blocked = _task(store, plan)
    assert (blocked.status, blocked.reason) == (task_pb2.TASK_STATUS_BLOCKED, "its agent was stopped by a person")
    assert {"agent:stopped", "task:blocked"} <= {e.type for e in store.events}


def _usage_line(input_tokens: int, output_tokens: int, message_id: str) -> str:
    """One turn's usage as Claude Code's stream-json reports it."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return json.dumps({"type": "assistant", "message": {"id": message_id, "usage": usage}}) + "\n"


def test_a_task_past_its_budget_is_stopped_blocked_and_resumed_in_its_session_once_raised(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store, budget_tokens=100)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            files = AgentFiles.of(tmp_path, agent.id)
            files.output.write_text(_usage_line(40, 20, "m1"))
            await whole.orchestrator.agents.meter(agent)  # the watch loop's look at a grown output
            assert _agent(store, agent.id).status == agent_pb2.AGENT_STATUS_RUNNING  # 60 of 100
            with files.output.open("a") as output:
                output.write(_usage_line(50, 30, "m2"))
            await whole.orchestrator.agents.meter(_agent(store, agent.id))
            await whole.settled()
            stopped = _agent(store, agent.id)
            assert (stopped.status, stopped.usage.input_tokens, stopped.usage.output_tokens) == (
                agent_pb2.AGENT_STATUS_STOPPED,
                90,
                50,
            )
            blocked = _task(store, plan)
            assert blocked.status == task_pb2.TASK_STATUS_BLOCKED
            assert blocked.reason == "the task's budget is spent: 140 tokens used of 100"
            # A person raises the budget and retries the task: the same agent goes on in its session.
            raised = update(blocked, budget_tokens=1000, status=task_pb2.TASK_STATUS_PENDING, reason=None)
            await store.append([], changes(raised))
            await whole.settled()
            (resumed,) = whole.running()
            assert resumed.id == agent.id
            assert whole.launched[-1].resume
            assert BUDGET_NOTE.format(reason=blocked.reason) in whole.launched[-1].prompt

    asyncio.run(main())


def test_an_initiative_past_its_budget_starts_nothing_until_raised(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store, "first")
    second = store.create_task(plan.phase, "second", [plan.task.id])
    asyncio.run(store.append([], changes(update(plan.initiative, budget_tokens=100))))

    def waiting() -> task_pb2.Task:
        return store.tables.rows["task"][second.id]

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent = await _started(whole, plan)
            AgentFiles.of(tmp_path, agent.id).output.write_text(_usage_line(120, 30, "m1"))
            whole.end(agent.id, DONE)  # its usage is recorded with its settlement
            await whole.until("the budget's reason", lambda: "budget" in waiting().reason)
            assert waiting().reason == "the initiative's budget is spent: 150 tokens used of 100"
            assert (waiting().status, waiting().retry_count) == (task_pb2.TASK_STATUS_PENDING, 0)
            assert whole.running() == []
            initiative = store.tables.rows["initiative"][plan.initiative.id]
            await store.append([], changes(update(initiative, budget_tokens=1000)))  # `cw budget initiative`
            await whole.until("the second run", lambda: len(whole.launched) == 2)
            assert whole.launched[1].agent.task_id == second.id

    asyncio.run(main())
    (first,) = [agent for agent in store.tables.rows["agent"].values() if agent.task_id == plan.task.id]
    assert (first.usage.input_tokens, first.usage.output_tokens) == (120, 30)
