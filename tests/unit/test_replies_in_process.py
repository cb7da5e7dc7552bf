"""The replies controller in-process (tests/fakes/whole.py): a run's message that requires a response
makes its agent wait, holding no slot, until the person's reply resumes the same agent with it; a
reply to any other message goes into the task's next run, once. No server, git or agent process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cw.store.v1 import agent_pb2, message_pb2, task_pb2
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore
from tests.fakes.whole import OneTask, Whole, one_task

QUESTION = {"content": "sqlite or postgres?", "requires_response": True}


def _messages(store: FakeStore) -> list[message_pb2.Message]:
    return sorted(store.tables.rows["message"].values(), key=lambda m: m.create_time.ToNanoseconds())


def _replies_to(store: FakeStore, message_id: str) -> list[message_pb2.Message]:
    return [m for m in _messages(store) if m.parent_message_id == message_id]


def _task(store: FakeStore, plan: OneTask) -> task_pb2.Task:
    return store.tables.rows["task"][plan.task.id]


async def _waiting_on_a_message(whole: Whole, plan: OneTask) -> tuple[agent_pb2.Agent, message_pb2.Message]:
    await whole.approve(plan.phase.id)
    await whole.settled()
    (agent,) = whole.running()
    whole.end(agent.id, {"status": "done", "summary": "asked", "messages": [QUESTION]})
    await whole.settled()
    (message,) = _messages(whole.store)
    return whole.store.tables.rows["agent"][agent.id], message


def test_a_message_that_needs_a_reply_makes_its_agent_wait_holding_no_slot(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent, message = await _waiting_on_a_message(whole, plan)
            assert agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
            assert (message.sender_id, message.requires_response, message.content) == (
                agent.id,
                True,
                "sqlite or postgres?",
            )
            assert message.id in agent.pending_questions
            assert whole.running() == []  # its slot is free while it waits

    asyncio.run(main())
    assert _task(store, plan).status == task_pb2.TASK_STATUS_IN_PROGRESS


def test_the_reply_resumes_the_same_agent_with_it_and_is_read_with_that_runs_settlement(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            agent, message = await _waiting_on_a_message(whole, plan)
            store.reply(message.id, "postgres, please")  # `cw reply`
            await whole.settled()
            (resumed,) = whole.running()
            assert resumed.id == agent.id  # resumed, not restarted
            run = whole.launched[-1]
            assert run.resume and "postgres, please" in run.prompt and "sqlite or postgres?" in run.prompt
            assert store.tables.rows["message"][message.id].status == message_pb2.MESSAGE_STATUS_RESPONDED
            (reply,) = _replies_to(store, message.id)
            assert reply.status == message_pb2.MESSAGE_STATUS_PENDING  # not read before its run ends well
            whole.end(resumed.id, {"status": "done", "summary": "postgres it is"})
            await whole.settled()

    asyncio.run(main())
    assert _task(store, plan).status == task_pb2.TASK_STATUS_COMPLETED
    assert len([a for a in store.tables.rows["agent"].values() if a.task_id == plan.task.id]) == 1
    (reply,) = _replies_to(store, _messages(store)[0].id)
    assert reply.status == message_pb2.MESSAGE_STATUS_READ


def test_no_resume_before_every_awaited_message_has_its_reply(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)
    second = {"content": "and which port?", "requires_response": True}

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.approve(plan.phase.id)
            await whole.settled()
            (agent,) = whole.running()
            whole.end(agent.id, {"status": "done", "messages": [QUESTION, second]})
            await whole.settled()
            first, other = _messages(store)
            store.reply(first.id, "postgres")
            await whole.settled()
            assert whole.running() == []
            assert store.tables.rows["agent"][agent.id].status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
            store.reply(other.id, "5432")
            await whole.settled()
            (resumed,) = whole.running()
            assert resumed.id == agent.id
            assert "postgres" in whole.launched[-1].prompt and "5432" in whole.launched[-1].prompt

    asyncio.run(main())


def test_a_reply_to_a_note_goes_into_the_tasks_next_run_once(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.approve(plan.phase.id)
            await whole.settled()
            for _attempt in range(4):  # every attempt fails, leaving a note to the person
                (agent,) = whole.running()
                whole.end(agent.id, {"status": "error", "error": "no db", "messages": ["I picked sqlite for now"]})
                await whole.settled()
            assert _task(store, plan).status == task_pb2.TASK_STATUS_BLOCKED
            notes = _messages(store)
            assert len(notes) == 4 and not any(note.requires_response for note in notes)
            store.reply(notes[0].id, "sqlite is fine")
            retried = update(_task(store, plan), status=task_pb2.TASK_STATUS_PENDING, retry_count=0, reason=None)
            await store.append([], changes(retried))  # `cw task retry`
            await whole.settled()
            (agent,) = whole.running()
            whole.end(agent.id, {"status": "done"})
            await whole.settled()
            prompts = [run.prompt for run in whole.launched]
            assert ["sqlite is fine" in prompt for prompt in prompts] == [False] * 4 + [True]

    asyncio.run(main())
    assert _task(store, plan).status == task_pb2.TASK_STATUS_COMPLETED
    (reply,) = [m for m in _messages(store) if m.sender_type == message_pb2.PARTICIPANT_TYPE_USER]
    assert reply.status == message_pb2.MESSAGE_STATUS_READ
