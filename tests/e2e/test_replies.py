"""The person's replies reach the agents: a message that requires a response makes its agent wait
(holding no slot) until `cw reply` resumes it with the reply in its prompt, also across a SIGKILL of
the orchestrator while it waits; a reply to any other message goes into the task's next run, once."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import agent_pb2, message_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, cluster, wait_for

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
WAITING = agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW


def _message(c: Cluster, message_id: str) -> message_pb2.Message:
    return c.api.messages.GetMessage(message_pb2.GetMessageRequest(id=message_id), timeout=10)


def _waiting_on_message(c: Cluster, task_id: str) -> tuple[agent_pb2.Agent, message_pb2.Message] | None:
    for agent in c.agents_of(task_id):
        sent = c.messages_from(agent.id) if agent.status == WAITING else []
        if sent:
            return agent, sent[0]
    return None


def _prompts(c: Cluster, task_id: str) -> list[str]:
    """What each run of the task was told, in order (the scripted agent logs it)."""
    text = (c.state_dir / f"prompts-{task_id}.txt").read_text()
    return [run for run in text.split("=== run of ") if run]


def _asks_the_person(c: Cluster, name: str) -> tuple[phase_pb2.Phase, task_pb2.Task]:
    initiative = c.initiative(name, c.project())
    phase = c.phase(initiative, "P")
    asking = c.task(phase, "asks", messages=[{"content": "sqlite or postgres?", "requires_response": True}])
    c.approve(phase)
    return phase, asking


def _reply_resumed_it(c: Cluster, phase: phase_pb2.Phase, asking: task_pb2.Task, message_id: str) -> None:
    c.wait_phase(phase.id, REVIEW)
    assert c.get_task(asking.id).status == COMPLETED and len(c.agents_of(asking.id)) == 1  # resumed, not restarted
    assert c.committed_answers(phase.id) == {message_id: "postgres, please"}
    runs = _prompts(c, asking.id)
    assert len(runs) == 2 and "postgres, please" in runs[1] and "sqlite or postgres?" in runs[1]
    assert _message(c, message_id).status == message_pb2.MESSAGE_STATUS_RESPONDED
    (reply,) = c.api.messages.ListMessages(message_pb2.ListMessagesRequest(parent_message_id=message_id)).messages
    assert reply.status == message_pb2.MESSAGE_STATUS_READ  # delivered, with the settlement of the run it reached
    assert message_id not in {item["id"] for item in c.cw_json("inbox")}
    c.assert_invariants()


def test_a_message_that_needs_a_reply_waits_for_it_and_the_reply_resumes_the_agent(tmp_path: Path) -> None:
    with cluster(tmp_path, max_agents=1) as c:
        phase, asking = _asks_the_person(c, "Replies")
        agent, message = wait_for("the agent waiting for a reply", lambda: _waiting_on_message(c, asking.id))
        assert message.requires_response and agent.status == WAITING
        assert c.get_task(asking.id).status == task_pb2.TASK_STATUS_IN_PROGRESS
        items = {item["id"]: item for item in c.cw_json("inbox")}
        assert items[message.id]["command"].startswith(f"cw reply {message.id}")
        assert agent.id not in items  # listed once: as the message, not as a question too
        free = c.task(phase, "meanwhile", files={"m.txt": "m"})  # its slot is free while it waits
        c.wait_task(free.id, COMPLETED)
        c.cw("reply", message.id, "postgres, please")
        _reply_resumed_it(c, phase, asking, message.id)


def test_the_reply_resumes_the_agent_across_a_sigkill_of_the_orchestrator(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase, asking = _asks_the_person(c, "Replies")
        _, message = wait_for("the agent waiting for a reply", lambda: _waiting_on_message(c, asking.id))
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.cw("reply", message.id, "postgres, please")  # the store takes it while the orchestrator is down
        c.start_orchestrator()
        _reply_resumed_it(c, phase, asking, message.id)


def test_a_reply_to_a_message_goes_into_the_next_run_once(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Notes", c.project()), "P")
        noting = c.task(phase, "notes", messages=["I picked sqlite for now"], error_times=4)
        c.approve(phase)
        c.wait_task(noting.id, task_pb2.TASK_STATUS_BLOCKED)
        first = c.agents_of(noting.id)
        notes = sorted((m for a in first for m in c.messages_from(a.id)), key=lambda m: m.create_time.ToNanoseconds())
        assert len(notes) == 4 and not any(m.requires_response for m in notes)
        said = c.cw("reply", notes[0].id, "sqlite is fine").stderr
        assert f"its next run reads this reply once you retry it (cw task retry {noting.id})" in said
        c.cw("task", "retry", noting.id)
        c.wait_phase(phase.id, REVIEW)
        runs = _prompts(c, noting.id)
        assert len(runs) == 5 and ["sqlite is fine" in run for run in runs] == [False] * 4 + [True]
        (reply,) = c.api.messages.ListMessages(message_pb2.ListMessagesRequest(parent_message_id=notes[0].id)).messages
        assert reply.status == message_pb2.MESSAGE_STATUS_READ
        # The task is done: a second reply is kept, and the person is told no run will read it.
        late = c.cw("reply", notes[1].id, "and use WAL")
        assert late.returncode == 0 and "is completed: no run will read this reply" in late.stderr
        c.assert_invariants()
