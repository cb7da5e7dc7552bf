"""Each kind of run (orchestrator_service/runs/): what it starts with and how it is settled, in
process: the table and the kinds are the real ones, over a real Context on the in-memory store
(tests/fakes/store.py); what would need a server, git or a process is a stand-in that records
(the agents controller's `write`, the person's replies, a lost session's new start, a phase's
diff, a planning run's proposals). The pure steps are tested on their own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from cw.store.v1 import agent_pb2, conversation_pb2, message_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service import dispatch, leftovers, outcomes
from orchestrator_service.agents.providers import Provider
from orchestrator_service.cache.state import Cache
from orchestrator_service.controllers.agent_runs.launches import Launches
from orchestrator_service.controllers.agent_runs.output import OutputShipper
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation, RunInput, RunInputs
from orchestrator_service.controllers.agent_runs.usage import BUDGET_KEY
from orchestrator_service.controllers.agents import AgentController, RunEnd
from orchestrator_service.controllers.context import Context, Settings
from orchestrator_service.conversations import decide
from orchestrator_service.conversations.person import Replies
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind, RunKind
from orchestrator_service.git.workspace import Diff
from orchestrator_service.outcomes import Settlement
from orchestrator_service.planning.runs import Planning, Write
from orchestrator_service.review.phase_merge import PhaseMerger
from orchestrator_service.runs import answer, review, revision, steps, table
from orchestrator_service.runs.answer import AnswerRun
from orchestrator_service.writes import Writer
from tests.fakes.orchestrator import StepClock
from tests.fakes.store import FakeStore, as_store_client

DIFF = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1,1 +1,2 @@
 print("hello")
+print("world")
"""


# ---- stand-ins for what needs a server, git or a process ---------------------------------------------


class Recorded(AgentController):
    """The agents controller, its settlement's write recorded instead of sent."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settled: list[Settlement] = []

    async def write(self, agent: agent_pb2.Agent, task: task_pb2.Task | None, settlement: Settlement) -> None:
        self.settled.append(settlement)


def _message_with_id(request: message_pb2.CreateMessageRequest, index: int) -> message_pb2.Message:
    made = message_pb2.Message()
    made.CopyFrom(request.message)
    made.id = f"message-{index}"
    return made


class GivenReplies(Replies):
    """The person's replies: `given` in a run's prompt, `read` marked READ by its settlement."""

    def __init__(self, ctx: Context, given: str = "", read: Sequence[Message] = ()) -> None:
        super().__init__(ctx)
        self.given, self.read = given, list(read)
        self.created: list[message_pb2.CreateMessageRequest] = []

    async def prompt_for(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> str:
        return self.given

    async def delivered(self, agent: agent_pb2.Agent) -> list[Message]:
        return list(self.read)

    async def create(
        self, agent: agent_pb2.Agent, requests: Sequence[message_pb2.CreateMessageRequest]
    ) -> list[message_pb2.Message]:
        self.created += requests
        return [_message_with_id(request, index) for index, request in enumerate(requests)]


class LostSessions:
    """Launches' new start of a session the CLI lost, recorded."""

    def __init__(self) -> None:
        self.restarted: list[str] = []

    async def new_session(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> None:
        self.restarted.append(agent.id)


class Neighbourless(RunInputs):
    """The execute prompt's reads, with no other task in the phase and no agent named."""

    async def _neighbourhood(
        self, task: task_pb2.Task, dependencies: set[str]
    ) -> tuple[list[dispatch.Neighbour], dict[str, str]]:
        return [], {}


class Diffs(PhaseMerger):
    """A phase's diff as given (no git)."""

    def __init__(self, ctx: Context, found: list[tuple[project_pb2.Project, Diff]]) -> None:
        super().__init__(ctx)
        self.found = found

    async def diffs(self, phase: phase_pb2.Phase) -> list[tuple[project_pb2.Project, Diff]]:
        return self.found


class Proposing(Planning):
    """A planning run: its prompt and its proposals' storing stood in for (no store of pages)."""

    def __init__(self, ctx: Context, chat: Continuation | None = None) -> None:
        super().__init__(ctx)
        self.chat = chat

    async def run_input(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> RunInput:
        return RunInput(f"plan {task.name}\n", {"CW_TARGET_ID": "target-1"})

    async def continuation(self, task: task_pb2.Task) -> Continuation | None:
        return self.chat

    async def settle(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task | None,
        outcome: AgentOutcome,
        settlement: Settlement,
        write: Write,
    ) -> None:
        await write(dataclasses.replace(settlement, creates=(*settlement.creates, "proposals stored")))


@dataclasses.dataclass
class Harness:
    ctx: Context
    agents: Recorded
    replies: GivenReplies
    sessions: LostSessions
    table: table.RunTable
    phase: phase_pb2.Phase
    task_in: Callable[..., task_pb2.Task]


def _harness(
    tmp_path: Path, given: str = "", read: Sequence[Message] = (), chat: Continuation | None = None
) -> Harness:
    store = FakeStore()
    cache = Cache()
    client = as_store_client(store)
    settings = Settings(providers={"scripted": Provider("scripted", ("true",))}, default_provider="scripted", name="o")
    ctx = Context(client, cache, Writer(store, cache), tmp_path, settings, OutputShipper(client, tmp_path))
    ctx.clock = StepClock()
    initiative = store.create_initiative("auth")
    phase = store.create_phase(initiative.id, "p1")
    cache.phases[phase.id] = phase
    agents, replies, sessions = Recorded(ctx), GivenReplies(ctx, given, read), LostSessions()
    tools = steps.Tools(ctx, agents, cast(Launches, sessions), Neighbourless(ctx), replies)
    project = project_pb2.Project(id="project-1", name="app")
    runs = table.build(tools, Proposing(ctx, chat), Diffs(ctx, [(project, Diff("base", "head", [], DIFF))]))

    def task_in(name: str = "t", **values: Any) -> task_pb2.Task:
        task = store.create_task(phase, name)
        made = task_pb2.Task()
        made.CopyFrom(task)
        made.status = task_pb2.TASK_STATUS_IN_PROGRESS
        for field, value in values.items():
            if isinstance(value, list):
                getattr(made, field).extend(value)
            else:
                setattr(made, field, value)
        return made

    return Harness(ctx, agents, replies, sessions, runs, phase, task_in)


def _agent(task: task_pb2.Task, **values: Any) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id="agent-1", name="ada", task_id=task.id, session_id="s1", status=agent_pb2.AGENT_STATUS_RUNNING, **values
    )


def _done(**report: Any) -> AgentOutcome:
    return AgentOutcome(OutcomeKind.DONE, summary="did it", exit_code=0, report=report)


def _run(step: Awaitable[Any]) -> Any:
    return asyncio.run(step)  # type: ignore[arg-type]


def _statuses(settlement: Settlement) -> tuple[int, int | None]:
    return settlement.agent["status"], (settlement.task or {}).get("status")


READ = message_pb2.UpdateMessageRequest(
    message=message_pb2.Message(id="reply-1", status=message_pb2.MESSAGE_STATUS_READ)
)


# ---- the table --------------------------------------------------------------------------------------


def test_every_kind_of_a_task_has_its_entry_named_by_its_kind(tmp_path: Path) -> None:
    runs = _harness(tmp_path).table
    assert set(runs.kinds) == set(RunKind) - {RunKind.ANSWER}
    assert all(entry.kind == kind for kind, entry in runs.kinds.items())


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({}, RunKind.EXECUTE),
        ({"category": task_pb2.TASK_CATEGORY_MERGE, "merge_source_task_id": "t0"}, RunKind.MERGE),
        ({"category": task_pb2.TASK_CATEGORY_REVIEW}, RunKind.REVIEW),
        ({"review_comment_ids": ["c1"]}, RunKind.REVISION),
        ({"category": task_pb2.TASK_CATEGORY_PLAN}, RunKind.PLAN),
        ({"category": task_pb2.TASK_CATEGORY_REFINE}, RunKind.REFINE),
    ],
)
def test_a_run_says_its_kind_in_cw_run_kind(tmp_path: Path, values: dict[str, Any], kind: RunKind) -> None:
    h = _harness(tmp_path)
    task = h.task_in(**values)
    started = _run(h.table.run_input(_agent(task), task))
    assert started.environment["CW_RUN_KIND"] == kind.value


# ---- execute ------------------------------------------------------------------------------------------


def test_an_execute_run_starts_with_its_task_then_the_budget_note_then_the_replies(tmp_path: Path) -> None:
    h = _harness(tmp_path, given="\n## Replies from the person\n")
    task = h.task_in("build the login", description="Write login.py")
    stopped = _agent(task, outcome=agent_pb2.AGENT_OUTCOME_STOPPED, result=json.dumps({BUDGET_KEY: "spent"}))
    prompt = _run(h.table.run_input(stopped, task)).prompt
    assert prompt.index("Write login.py") < prompt.index("Your budget") < prompt.index("Replies from the person")


def test_an_execute_run_done_is_settled_with_its_messages_and_the_replies_it_read(tmp_path: Path) -> None:
    h = _harness(tmp_path, read=[READ])
    task = h.task_in()
    assert _run(h.table.settle(RunEnd(_agent(task), task, _done(messages=["fyi"]))))
    [settled] = h.agents.settled
    assert _statuses(settled) == (agent_pb2.AGENT_STATUS_STOPPED, task_pb2.TASK_STATUS_COMPLETED)
    assert [type(c).__name__ for c in settled.creates] == ["CreateMessageRequest", "UpdateMessageRequest"]


def test_an_execute_run_whose_message_requires_a_response_waits_for_the_reply(tmp_path: Path) -> None:
    h = _harness(tmp_path, read=[READ])
    task = h.task_in()
    asked = _done(messages=[{"content": "which db?", "requires_response": True}])
    _run(h.table.settle(RunEnd(_agent(task), task, asked)))
    [settled] = h.agents.settled
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert [m.message.content for m in h.replies.created] == ["which db?"]
    assert list(settled.creates) == [READ]  # the message is stored first, for its id


def test_a_failed_run_keeps_no_reply_read_for_its_next_session(tmp_path: Path) -> None:
    h = _harness(tmp_path, read=[READ])
    task = h.task_in()
    _run(h.table.settle(RunEnd(_agent(task), task, AgentOutcome(OutcomeKind.ERROR, error="boom", exit_code=1))))
    [settled] = h.agents.settled
    assert READ not in settled.creates


def test_a_session_the_cli_lost_starts_anew_and_the_run_is_not_over(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in()
    lost = AgentOutcome(OutcomeKind.ERROR, unknown_session=True)
    assert not _run(h.table.settle(RunEnd(_agent(task), task, lost)))
    assert h.sessions.restarted == ["agent-1"]
    assert h.agents.settled == []


def test_an_ask_is_settled_before_anything_else_a_malformed_one_is_a_failed_attempt(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in()
    ask = AgentOutcome(OutcomeKind.ASK, unknown_session=True, report={"status": "ask"})  # no "to", no "question"
    assert _run(h.table.settle(RunEnd(_agent(task), task, ask)))
    assert h.sessions.restarted == []
    [settled] = h.agents.settled
    assert "needs" in settled.agent["error"]


def test_a_take_overs_note_goes_with_its_settlement(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in()
    note = outcomes.Note("agent:taken_over", "agent", {"by": "o"})
    _run(h.table.settle(RunEnd(_agent(task), task, AgentOutcome(OutcomeKind.CRASH, error="lost"), (note,))))
    [settled] = h.agents.settled
    assert settled.notes[-1] == note


def test_what_a_run_left_is_said_in_its_settlement_even_when_it_waits(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in()
    left = (leftovers.Left(commits={"app": "abc123"}, taken=2), "done")
    asked = _done(messages=[{"content": "ok?", "requires_response": True}])
    _run(h.table.settle(RunEnd(_agent(task), task, asked, left=left)))
    [settled] = h.agents.settled
    checkpointed = [n for n in settled.notes if n.type == "agent:checkpointed"]
    assert [n.details["commits"] for n in checkpointed] == [{"app": "abc123"}]


# ---- merge --------------------------------------------------------------------------------------------


def test_conflict_markers_left_make_a_done_a_failed_attempt() -> None:
    failed = steps.conflicted(_done(), ["app/login.py"])
    assert (failed.kind, failed.error) == ("error", "conflict markers remain in app/login.py")
    assert steps.conflicted(_done(), []).kind == OutcomeKind.DONE
    assert steps.conflicted(AgentOutcome(OutcomeKind.CRASH), ["app/x"]).kind == OutcomeKind.CRASH


def test_only_a_merge_run_is_checked_for_conflict_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def markers(ctx: Context, task: task_pb2.Task | None, outcome: AgentOutcome) -> AgentOutcome:
        return steps.conflicted(outcome, ["app/login.py"])

    monkeypatch.setattr(steps, "conflict_markers", markers)
    h = _harness(tmp_path)
    merge = h.task_in("m", category=task_pb2.TASK_CATEGORY_MERGE, merge_source_task_id="t0")
    execute = h.task_in("e")
    _run(h.table.settle(RunEnd(_agent(merge), merge, _done())))
    _run(h.table.settle(RunEnd(_agent(execute), execute, _done())))
    merged, executed = h.agents.settled
    assert (merged.task or {})["status"] != task_pb2.TASK_STATUS_COMPLETED
    assert "conflict markers" in merged.agent["error"]
    assert (executed.task or {})["status"] == task_pb2.TASK_STATUS_COMPLETED


# ---- review -------------------------------------------------------------------------------------------


COMMENTED = {"review_comments": [{"file": "app.py", "line": 2, "body": "say why"}]}


def test_a_review_run_starts_with_its_phases_diff(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in("review", category=task_pb2.TASK_CATEGORY_REVIEW, phase_id=h.phase.id)
    prompt = _run(h.table.run_input(_agent(task), task)).prompt
    assert "## The diff to review" in prompt and '+print("world")' in prompt


def test_a_completed_review_stores_its_comments_by_the_agents_name(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in("review", category=task_pb2.TASK_CATEGORY_REVIEW, phase_id=h.phase.id)
    _run(h.table.settle(RunEnd(_agent(task), task, _done(**COMMENTED))))
    [settled] = h.agents.settled
    [comment] = [c.review_comment for c in settled.creates]
    assert (comment.author, comment.file_path, comment.body) == ("ada", "app.py", "say why")


def test_a_failed_review_stores_no_comment(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in("review", category=task_pb2.TASK_CATEGORY_REVIEW, phase_id=h.phase.id)
    _run(h.table.settle(RunEnd(_agent(task), task, AgentOutcome(OutcomeKind.ERROR, error="x", report=COMMENTED))))
    [settled] = h.agents.settled
    assert settled.creates == ()


def test_reviewed_is_pure_and_leaves_out_a_comment_outside_the_diff() -> None:
    settlement = Settlement({}, {}, [])
    outside = _done(review_comments=[{"file": "other.py", "line": 1, "body": "?"}])
    assert review.reviewed(settlement, outside, "p", "ada", []).creates == ()


# ---- revision -----------------------------------------------------------------------------------------


def test_a_revision_stores_the_comments_it_resolved_among_those_it_was_given(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in("fix", review_comment_ids=["c1", "c2"])
    _run(h.table.settle(RunEnd(_agent(task), task, _done(resolved_comments=["c2", "c9"]))))
    [settled] = h.agents.settled
    assert (settled.task or {})["resolved_comment_ids"] == ["c2"]


def test_resolved_keeps_the_tasks_other_values() -> None:
    task = task_pb2.Task(review_comment_ids=["c1"])
    settled = revision.resolved(Settlement({}, {"status": 3}, []), _done(resolved_comments=["c1"]), task)
    assert settled.task == {"status": 3, "resolved_comment_ids": ["c1"]}


# ---- planning -----------------------------------------------------------------------------------------


def test_a_planning_run_starts_with_its_material_and_its_target(tmp_path: Path) -> None:
    h = _harness(tmp_path, given="\nreplies\n")
    task = h.task_in("shape it", category=task_pb2.TASK_CATEGORY_DETAIL)
    started = _run(h.table.run_input(_agent(task), task))
    assert started.prompt == "plan shape it\n\nreplies\n"
    assert started.environment == {"CW_RUN_KIND": "detail", "CW_TARGET_ID": "target-1"}


def test_a_chat_turn_continues_before_a_budgets_session(tmp_path: Path) -> None:
    chat = Continuation(agent_pb2.Agent(id="earlier"), {"m1": "hi"})
    h = _harness(tmp_path, chat=chat)
    refine = h.task_in("r", category=task_pb2.TASK_CATEGORY_REFINE)
    assert _run(h.table.continuation(refine)) == chat


def test_a_planning_runs_proposals_come_before_its_messages_and_it_never_waits(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    task = h.task_in("p", category=task_pb2.TASK_CATEGORY_PLAN)
    wants = _done(messages=[{"content": "ok?", "requires_response": True}])
    _run(h.table.settle(RunEnd(_agent(task), task, wants)))
    [settled] = h.agents.settled
    assert settled.creates[0] == "proposals stored"
    assert [c.message.content for c in settled.creates[1:]] == ["ok?"]
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_STOPPED


# ---- answer -------------------------------------------------------------------------------------------


def _conversation(**values: Any) -> conversation_pb2.Conversation:
    return conversation_pb2.Conversation(
        id="c1", question="which port?", status=conversation_pb2.CONVERSATION_STATUS_PENDING, **values
    )


def test_an_answer_run_starts_with_the_question_and_its_conversation() -> None:
    start = decide.AnswerStart(_conversation(), "bob", None, decide.OwnWork(None, {}))
    run = answer.answer_input(start)
    assert "which port?" in run.prompt
    assert run.environment == {"CW_CONVERSATION_ID": "c1", "CW_RUN_KIND": "answer"}


def test_an_answer_answers_the_conversation_and_leaves_the_task_alone() -> None:
    agent = agent_pb2.Agent(id="b", name="bob", conversation_id="c1")
    outcome = AgentOutcome(OutcomeKind.ANSWER, report={"status": "answer", "answer": "8080"})
    notes, requests = answer.answered(agent, outcome, _conversation(), StepClock()(), (0.0,))
    assert [type(r).__name__ for r in requests] == ["UpdateAgentRequest", "AnswerConversationRequest"]
    assert cast(conversation_pb2.AnswerConversationRequest, requests[1]).answer == "8080"
    assert notes[0].type == "agent:stopped"


def test_a_run_that_gives_no_answer_is_counted_and_retried() -> None:
    agent = agent_pb2.Agent(id="b", name="bob", conversation_id="c1")
    _, requests = answer.answered(agent, AgentOutcome(OutcomeKind.CRASH), _conversation(), StepClock()(), (5.0, 5.0))
    assert [type(r).__name__ for r in requests] == ["UpdateAgentRequest", "UpdateConversationRequest"]


class RecordedAnswers(AnswerRun):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ended: list[RunEnd] = []

    async def settle(self, end: RunEnd) -> bool:
        self.ended.append(end)
        return True


def test_a_run_that_answers_a_conversation_is_the_answer_kinds_whatever_its_task(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    answers = RecordedAnswers(h.ctx)
    runs = table.RunTable(h.table.kinds, answers)
    task = h.task_in("r", category=task_pb2.TASK_CATEGORY_REVIEW)
    end = RunEnd(_agent(task, conversation_id="c1"), task, _done())
    assert _run(runs.settle(end))
    assert answers.ended == [end]
    assert h.agents.settled == []


# ---- the pure steps -----------------------------------------------------------------------------------


def test_with_told_keeps_the_replies_read_only_when_the_session_took_them_in() -> None:
    said = steps.Told([], [READ])
    done = Settlement({"status": agent_pb2.AGENT_STATUS_STOPPED, "outcome": agent_pb2.AGENT_OUTCOME_DONE}, None, [])
    failed = Settlement({"status": agent_pb2.AGENT_STATUS_STOPPED, "outcome": agent_pb2.AGENT_OUTCOME_FAILED}, None, [])
    assert steps.with_told(done, said).creates == (READ,)
    assert steps.with_told(failed, said).creates == ()


def test_only_a_run_that_ends_well_outside_planning_waits() -> None:
    wanted = steps.Told(
        [message_pb2.CreateMessageRequest(message=message_pb2.Message(content="?", requires_response=True))], []
    )
    execute, plan = task_pb2.Task(), task_pb2.Task(category=task_pb2.TASK_CATEGORY_PLAN)
    assert steps.waits(execute, _done(), wanted)
    assert not steps.waits(execute, AgentOutcome(OutcomeKind.ERROR), wanted)
    assert not steps.waits(plan, _done(), wanted)
    assert not steps.waits(execute, _done(), steps.Told([], []))


def test_the_budget_note_only_for_a_run_its_budget_stopped() -> None:
    stopped = agent_pb2.Agent(
        session_id="s", outcome=agent_pb2.AGENT_OUTCOME_STOPPED, result=json.dumps({BUDGET_KEY: "1 of 0"})
    )
    assert "1 of 0" in steps.budget_note(stopped)
    assert steps.budget_note(agent_pb2.Agent(session_id="s")) == ""
