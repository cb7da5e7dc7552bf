"""How a run ends, through the real table of run kinds wired by core.py (tests/fakes/whole.py):
the cases the table decides without the task's own kind (a task gone, a message to the person)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cw.store.v1 import agent_pb2, message_pb2
from orchestrator_service.cache.state import RowKind
from orchestrator_service.outcomes import Note
from tests.fakes.store import FakeStore
from tests.fakes.whole import Whole, one_task


def test_a_lost_run_whose_task_is_gone_is_settled_as_a_crash_with_its_note(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FakeStore()
        plan = one_task(store)
        async with Whole(tmp_path, store) as whole:
            await whole.approve(plan.phase.id)
            await whole.settled()
            (agent,) = whole.running()
            del store.tables.rows["task"][plan.task.id]
            whole.ctx.cache.drop(RowKind.TASK, plan.task.id)
            note = Note("agent:taken_over", "agent", {"orchestrator": "gone", "by": "here"})
            await whole.orchestrator.agents.settle_lost(agent, "its orchestrator is gone", note)
            await whole.settled()
            settled = store.tables.rows["agent"][agent.id]
            assert settled.status != agent_pb2.AGENT_STATUS_RUNNING
            assert "its orchestrator is gone" in settled.error
            assert [e.type for e in store.events if e.type == "agent:taken_over"] == ["agent:taken_over"]

    asyncio.run(scenario())


def test_a_failed_run_stores_its_messages_and_does_not_wait_for_a_reply(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FakeStore()
        plan = one_task(store)
        async with Whole(tmp_path, store) as whole:
            await whole.approve(plan.phase.id)
            await whole.settled()
            (agent,) = whole.running()
            said = {"content": "which schema?", "requires_response": True}
            whole.end(agent.id, {"status": "error", "error": "stuck", "messages": [said]})
            await whole.settled()
            stored = list(store.tables.rows["message"].values())
            assert [m.content for m in stored] == ["which schema?"]
            assert stored[0].type == message_pb2.MESSAGE_TYPE_QUESTION
            assert store.tables.rows["agent"][agent.id].status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT

    asyncio.run(scenario())
