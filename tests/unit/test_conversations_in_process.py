"""The conversations controller in-process (tests/fakes/whole.py): an agent's question to another is
stored, the asker waits holding no slot, the recipient's session is resumed in discuss mode and its
answer resumes the asker; a question nobody can answer is answered by cw; a failed answer run is
retried and the last failure answers the asker. No server, git or agent process."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from cw.store.v1 import agent_pb2, conversation_pb2, phase_pb2, task_pb2
from orchestrator_service.dispatch import MAX_TASK_RETRIES
from tests.fakes.store import FakeStore
from tests.fakes.whole import Whole

ANSWERED = conversation_pb2.CONVERSATION_STATUS_ANSWERED


@dataclass(frozen=True)
class Pair:
    phase: phase_pb2.Phase
    answerer: task_pb2.Task
    asker: task_pb2.Task


def _pair(store: FakeStore) -> Pair:
    """A phase of two tasks: `b`, then `a` (which asks b)."""
    initiative = store.create_initiative("talk")
    store.add_project(initiative.id, "app")
    phase = store.create_phase(initiative.id, "P")
    answerer = store.create_task(phase, "b")
    return Pair(phase, answerer, store.create_task(phase, "a", [answerer.id]))


def _agents_of(store: FakeStore, task: task_pb2.Task) -> list[agent_pb2.Agent]:
    return [agent for agent in store.tables.rows["agent"].values() if agent.task_id == task.id]


def _conversations(store: FakeStore) -> list[conversation_pb2.Conversation]:
    return list(store.tables.rows["conversation"].values())


def _task(store: FakeStore, task: task_pb2.Task) -> task_pb2.Task:
    return store.tables.rows["task"][task.id]


async def _b_done_and_a_asks(whole: Whole, pair: Pair, to: str, question: str = "what is in b.txt?") -> None:
    await whole.approve(pair.phase.id)
    await whole.settled()
    (b_run,) = whole.running()
    whole.end(b_run.id, {"status": "done", "summary": "b made"})
    await whole.settled()
    (a_run,) = whole.running()
    assert a_run.task_id == pair.asker.id
    whole.end(a_run.id, {"status": "ask", "to": to, "question": question})
    await whole.settled()


def test_an_agent_asks_another_which_answers_in_its_session_and_the_asker_goes_on(tmp_path: Path) -> None:
    store = FakeStore()
    pair = _pair(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await _b_done_and_a_asks(whole, pair, to=pair.answerer.id)
            (b_agent,) = _agents_of(store, pair.answerer)
            (a_agent,) = _agents_of(store, pair.asker)
            (asked,) = _conversations(store)
            assert (asked.from_agent_id, asked.to_agent_id, asked.question) == (
                a_agent.id,
                b_agent.id,
                "what is in b.txt?",
            )
            assert a_agent.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
            # The recipient's session, resumed to answer: discuss mode, told the question.
            (answering,) = whole.running()
            assert (answering.id, answering.conversation_id) == (b_agent.id, asked.id)
            run = whole.launched[-1]
            assert (run.mode, run.resume, run.environment["CW_CONVERSATION_ID"]) == ("discuss", True, asked.id)
            assert run.environment["CW_RUN_KIND"] == "answer" and "what is in b.txt?" in run.prompt
            whole.end(b_agent.id, {"status": "answer", "answer": "b.txt holds b"})
            await whole.settled()
            # Answered; the recipient back as it was, its task untouched; the asker resumed with it.
            (answered,) = _conversations(store)
            assert (answered.status, answered.answer, answered.attempts) == (ANSWERED, "b.txt holds b", 0)
            b_after = store.tables.rows["agent"][b_agent.id]
            assert (b_after.status, b_after.outcome, b_after.conversation_id) == (
                agent_pb2.AGENT_STATUS_STOPPED,
                agent_pb2.AGENT_OUTCOME_DONE,
                "",
            )
            assert _task(store, pair.answerer).status == task_pb2.TASK_STATUS_COMPLETED
            (resumed,) = whole.running()
            assert resumed.id == a_agent.id and whole.launched[-1].resume
            assert "b.txt holds b" in whole.launched[-1].prompt
            whole.end(a_agent.id, {"status": "done"})
            await whole.settled()

    asyncio.run(main())
    assert _task(store, pair.asker).status == task_pb2.TASK_STATUS_COMPLETED
    assert len(_agents_of(store, pair.asker)) == 1  # resumed, not restarted
    resumed = [e.agent_id for e in store.events if e.type == "agent:resumed"]
    assert len(resumed) == 2  # the answerer once, to answer; the asker once, with the answer
    assert store.tables.rows["phase"][pair.phase.id].status == phase_pb2.PHASE_STATUS_PENDING_REVIEW


def test_a_question_nobody_can_answer_is_answered_by_cw_at_once(tmp_path: Path) -> None:
    store = FakeStore()
    pair = _pair(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await _b_done_and_a_asks(whole, pair, to="nobody-at-all", question="anyone?")
            (asked,) = _conversations(store)
            assert asked.status == ANSWERED
            assert asked.answer.startswith("cw: no agent or task named 'nobody-at-all'")
            (resumed,) = whole.running()  # the asker goes on with cw's answer
            assert resumed.task_id == pair.asker.id and asked.answer in whole.launched[-1].prompt

    asyncio.run(main())
    (b_agent,) = _agents_of(store, pair.answerer)
    assert not b_agent.conversation_id  # nobody was asked


def test_a_failed_answer_run_is_retried_and_counted(tmp_path: Path) -> None:
    store = FakeStore()
    pair = _pair(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await _b_done_and_a_asks(whole, pair, to=pair.answerer.id)
            (b_agent,) = _agents_of(store, pair.answerer)
            whole.end(b_agent.id, exit_code=3)  # the answer run crashed
            await whole.settled()
            (pending,) = _conversations(store)
            assert (pending.status, pending.attempts) == (conversation_pb2.CONVERSATION_STATUS_PENDING, 1)
            (again,) = whole.running()  # resumed again (no retry delay here)
            assert again.id == b_agent.id
            whole.end(b_agent.id, {"status": "answer", "answer": "second time lucky"})
            await whole.settled()

    asyncio.run(main())
    (answered,) = _conversations(store)
    assert (answered.status, answered.answer, answered.attempts) == (ANSWERED, "second time lucky", 1)
    assert _task(store, pair.answerer).retry_count == 0  # the answerer's task spent nothing


def test_the_last_failed_answer_run_answers_the_asker_saying_why(tmp_path: Path) -> None:
    store = FakeStore()
    pair = _pair(store)
    attempts = MAX_TASK_RETRIES + 1

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await _b_done_and_a_asks(whole, pair, to=pair.answerer.id)
            (b_agent,) = _agents_of(store, pair.answerer)
            for _attempt in range(attempts):
                whole.end(b_agent.id, {"status": "done"})  # ends without an answer
                await whole.settled()
            (resumed,) = whole.running()
            assert resumed.task_id == pair.asker.id

    asyncio.run(main())
    (failed,) = _conversations(store)
    (b_agent,) = _agents_of(store, pair.answerer)
    assert failed.status == ANSWERED and failed.attempts == attempts
    assert (
        failed.answer.startswith(f"cw: {b_agent.name} could not answer") and f"({attempts} attempts)" in failed.answer
    )
    resumed = [e.agent_id for e in store.events if e.type == "agent:resumed"]
    assert resumed.count(b_agent.id) == attempts
    assert json.loads(store.tables.rows["agent"][b_agent.id].result)["status"] == "done"
