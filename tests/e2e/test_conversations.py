"""Agents that ask each other: the asker waits holding no slot, the recipient's session is resumed in
discuss mode and answers, the asker resumes with the answer; a question nobody can answer gets an
answer saying so; and all of it across a SIGKILL of the orchestrator while the asker waits."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import agent_pb2, conversation_pb2, phase_pb2, task_pb2
from orchestrator_service.dispatch import MAX_TASK_RETRIES
from tests.e2e.cluster import Cluster, cluster, wait_for

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW


def _conversations(c: Cluster, initiative_id: str) -> list[conversation_pb2.Conversation]:
    request = conversation_pb2.ListConversationsRequest(initiative_id=initiative_id)
    return list(c.api.conversations.ListConversations(request, timeout=10).conversations)


def test_an_agent_asks_another_and_goes_on_with_the_answer(tmp_path: Path) -> None:
    with cluster(tmp_path, max_agents=1) as c:
        initiative = c.initiative("Talk", c.project())
        phase = c.phase(initiative, "P")
        answerer = c.task(phase, "b", files={"b.txt": "b"}, answer="b.txt holds b", answer_messages=["b was asked"])
        asker = c.task(
            phase,
            "a",
            after=[answerer.id],
            ask={"to": answerer.id, "question": "what is in b.txt?"},
            ask_messages=["a asks b"],
        )
        c.approve(phase)
        c.wait_phase(phase.id, REVIEW)
        (asked,) = _conversations(c, initiative.id)
        b_agent = c.agents_of(answerer.id)[0]
        assert (asked.status, asked.answer, asked.to_agent_id) == (
            conversation_pb2.CONVERSATION_STATUS_ANSWERED,
            "b.txt holds b",
            b_agent.id,
        )
        assert c.committed_answers(phase.id) == {asked.id: "b.txt holds b"}
        assert c.get_task(answerer.id).status == COMPLETED and b_agent.outcome == agent_pb2.AGENT_OUTCOME_DONE
        assert not b_agent.conversation_id and len(c.agents_of(asker.id)) == 1  # resumed, not restarted
        resumed = [e for e in c.events() if e.type == "agent:resumed" and e.agent_id == b_agent.id]
        assert len(resumed) == 1  # its session, once, to answer
        # What the ask and the answer runs told the person is stored, once each.
        a_agent = c.agents_of(asker.id)[0]
        assert [m.content for m in c.messages_from(a_agent.id)] == ["a asks b"]
        assert [m.content for m in c.messages_from(b_agent.id)] == ["b was asked"]
        # The asker was told whom it may ask; the answerer, both tasks and what its work changed.
        asked_runs = (c.state_dir / f"prompts-{asker.id}.txt").read_text()
        assert f"- b (task {answerer.id}, agent {b_agent.name}, completed)" in asked_runs
        answer_runs = (c.state_dir / f"prompts-{answerer.id}.txt").read_text().split("=== run of ")[1:]
        assert [run.split("kind ")[1].split(")")[0] for run in answer_runs] == ["execute", "answer"]
        assert "## Your task: b" in answer_runs[1] and "- app: b.txt" in answer_runs[1]

        nobody = c.task(phase, "n", ask={"to": "nobody-at-all", "question": "anyone?"})
        c.wait_task(nobody.id, COMPLETED)
        c.wait_phase(phase.id, REVIEW)
        unanswerable = next(x for x in _conversations(c, initiative.id) if x.id != asked.id)
        assert unanswerable.answer.startswith("cw: no agent or task named 'nobody-at-all'")
        assert c.committed_answers(phase.id)[unanswerable.id] == unanswerable.answer
        listed = c.cw("conversations", "--initiative", initiative.id).stdout
        assert b_agent.name in listed and "answered" in listed and "what is in b.txt?" in listed
        c.assert_invariants()


def test_the_asker_waits_through_a_sigkill_of_the_orchestrator(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        initiative = c.initiative("Talk", c.project())
        done, later = c.phase(initiative, "Done"), c.phase(initiative, "Later")
        answerer = c.task(done, "b", files={"b.txt": "b"}, answer="slow but sure", answer_wait_for=str(release))
        c.approve(done)
        c.wait_phase(done.id, REVIEW)
        c.cw("phase", "merge", done.id)  # its task finished long ago: no longer live work
        name = c.agents_of(answerer.id)[0].name
        asker = c.task(later, "a", ask={"to": name, "question": "sure?"})
        c.approve(later)

        def waiting_and_answering() -> bool:
            asking = c.agents_of(asker.id)
            answering = c.agents_of(answerer.id)[0]
            # Its process started (agent:resumed follows the spawn): killing the orchestrator between
            # the claim and the spawn would leave no process to answer while it is down.
            started = any(e.type == "agent:resumed" and e.agent_id == answering.id for e in c.events())
            return (
                bool(asking)
                and asking[0].status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
                and bool(answering.conversation_id and answering.status == agent_pb2.AGENT_STATUS_RUNNING)
                and started
            )

        wait_for("the asker waiting and the answerer resumed", waiting_and_answering)
        assert c.orchestrator is not None
        c.orchestrator.kill()
        release.touch()
        answered = tmp_path / "workspace" / "agents" / c.agents_of(answerer.id)[0].id / "exit.json"
        wait_for("the answer to be written while the orchestrator is down", answered.exists)
        c.start_orchestrator()
        c.wait_phase(later.id, REVIEW)
        assert c.get_task(asker.id).status == COMPLETED
        (asked,) = _conversations(c, initiative.id)
        assert asked.answer == "slow but sure"
        assert c.committed_answers(later.id) == {asked.id: "slow but sure"}
        c.assert_invariants()


def test_a_failed_answer_run_is_retried_and_the_last_failure_answers_the_asker(tmp_path: Path) -> None:
    attempts = MAX_TASK_RETRIES + 1  # as many runs as a task gets
    with cluster(tmp_path) as c:
        initiative = c.initiative("Talk", c.project())
        lucky, unlucky = c.phase(initiative, "Lucky"), c.phase(initiative, "Unlucky")  # each commits answers.txt
        flaky = c.task(lucky, "flaky", files={"f.txt": "f"}, answer="second time lucky", answer_crash_times=1)
        broken = c.task(unlucky, "broken", files={"b.txt": "b"}, answer_fails=True)
        c.task(lucky, "asks-flaky", after=[flaky.id], ask={"to": flaky.id, "question": "ready?"})
        c.task(unlucky, "asks-broken", after=[broken.id], ask={"to": broken.id, "question": "there?"})
        c.approve(lucky, unlucky)
        c.wait_phase(lucky.id, REVIEW)
        c.wait_phase(unlucky.id, REVIEW)  # the asker went on with cw's answer: no hang
        by_recipient = {x.to_agent_id: x for x in _conversations(c, initiative.id)}
        flaky_agent, broken_agent = c.agents_of(flaky.id)[0], c.agents_of(broken.id)[0]
        answered, failed = by_recipient[flaky_agent.id], by_recipient[broken_agent.id]
        assert (answered.answer, answered.attempts) == ("second time lucky", 1)
        assert failed.answer.startswith(f"cw: {broken_agent.name} could not answer") and failed.attempts == attempts
        assert f"({attempts} attempts)" in failed.answer
        assert c.committed_answers(lucky.id) == {answered.id: "second time lucky"}
        assert c.committed_answers(unlucky.id) == {failed.id: failed.answer}
        resumed = [e.agent_id for e in c.events() if e.type == "agent:resumed"]
        assert resumed.count(flaky_agent.id) == 2 and resumed.count(broken_agent.id) == attempts
        c.assert_invariants()
