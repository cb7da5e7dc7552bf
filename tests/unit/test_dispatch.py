"""The orchestrator's pure decisions, exhaustively where the space is small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw.store.v1 import phase_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.agents.providers import Provider, parse_provider, provider_table

P = task_pb2


def _task(task_id: str, **fields: object) -> task_pb2.Task:
    task = task_pb2.Task(id=task_id, status=P.TASK_STATUS_PENDING, phase_id="ph")
    for key, value in fields.items():
        setattr(task, key, value)
    return task


def test_retry_arithmetic_gives_exactly_four_attempts() -> None:
    retry_count, attempts, status = 0, 0, P.TASK_STATUS_PENDING
    while status == P.TASK_STATUS_PENDING:
        attempts += 1
        decision = dispatch.after_crash(retry_count)
        retry_count, status = decision.retry_count, decision.status
    assert (attempts, retry_count, status) == (4, 3, P.TASK_STATUS_BLOCKED)


@given(st.integers(min_value=0, max_value=100))
def test_after_crash_never_exceeds_the_limit(retry_count: int) -> None:
    decision = dispatch.after_crash(retry_count)
    if retry_count < dispatch.MAX_TASK_RETRIES:
        assert (decision.status, decision.retry_count, decision.event) == (
            P.TASK_STATUS_PENDING,
            retry_count + 1,
            "task:retried",
        )
    else:
        assert (decision.status, decision.retry_count, decision.event) == (
            P.TASK_STATUS_BLOCKED,
            retry_count,
            "task:blocked",
        )


def test_ready_tasks_by_priority_then_order_then_age() -> None:
    tasks = [
        _task("low", priority=P.TASK_PRIORITY_LOW),
        _task("high-late", priority=P.TASK_PRIORITY_HIGH, order=2),
        _task("high-early", priority=P.TASK_PRIORITY_HIGH, order=1),
        _task("medium", priority=P.TASK_PRIORITY_MEDIUM),
    ]
    tasks[0].create_time.seconds = 1
    ready = dispatch.ready_tasks(tasks, {}, {"ph"}, set(), set())
    assert [t.id for t in ready] == ["high-early", "high-late", "medium", "low"]


def test_ready_tasks_wait_for_dependencies_phase_and_queue() -> None:
    tasks = [
        _task("first"),
        _task("second"),
        _task("elsewhere", phase_id="stopped-phase"),
        _task("loose", phase_id=""),
        _task("loose-queued", phase_id=""),
        _task("done", status=P.TASK_STATUS_COMPLETED),
    ]
    depends_on = {"second": {"first"}}
    ready = dispatch.ready_tasks(tasks, depends_on, {"ph"}, {"loose-queued"}, set())
    assert {t.id for t in ready} == {"first", "loose-queued"}
    ready = dispatch.ready_tasks(tasks, depends_on, {"ph"}, set(), {"first"})
    assert {t.id for t in ready} == {"first", "second"}


def test_phases_start_when_their_dependencies_completed() -> None:
    phases = [
        phase_pb2.Phase(id="a", status=phase_pb2.PHASE_STATUS_COMPLETED),
        phase_pb2.Phase(id="b", status=phase_pb2.PHASE_STATUS_APPROVED),
        phase_pb2.Phase(id="c", status=phase_pb2.PHASE_STATUS_APPROVED),
        phase_pb2.Phase(id="d", status=phase_pb2.PHASE_STATUS_PENDING),
    ]
    started = dispatch.phases_to_start(phases, {"b": {"a"}, "c": {"b"}})
    assert [p.id for p in started] == ["b"]


@pytest.mark.parametrize(
    ("statuses", "merged", "expected"),
    [
        ([P.TASK_STATUS_COMPLETED, P.TASK_STATUS_COMPLETED], {"t0", "t1"}, phase_pb2.PHASE_STATUS_PENDING_REVIEW),
        ([P.TASK_STATUS_COMPLETED, P.TASK_STATUS_COMPLETED], {"t0"}, phase_pb2.PHASE_STATUS_IN_PROGRESS),
        ([P.TASK_STATUS_COMPLETED, P.TASK_STATUS_BLOCKED], {"t0"}, phase_pb2.PHASE_STATUS_BLOCKED),
        ([P.TASK_STATUS_IN_PROGRESS, P.TASK_STATUS_PENDING], set(), phase_pb2.PHASE_STATUS_IN_PROGRESS),
        ([], set(), phase_pb2.PHASE_STATUS_IN_PROGRESS),
    ],
)
def test_running_phase_status(statuses: list[int], merged: set[str], expected: int) -> None:
    tasks = [_task(f"t{i}", status=status) for i, status in enumerate(statuses)]
    assert dispatch.running_phase_status(tasks, merged) == expected


@pytest.mark.parametrize(
    ("exit_code", "signal", "kind"),
    [
        (0, None, "done"),
        (0, "", "done"),
        (0, json.dumps({"status": "done", "summary": "ok"}), "done"),
        (0, json.dumps({"status": "questions", "questions": [{"id": "q1", "question": "?"}]}), "questions"),
        (0, json.dumps({"status": "questions", "questions": []}), "error"),
        (0, json.dumps({"status": "error", "error": "boom"}), "error"),
        (0, json.dumps({"status": "rate_limited", "retry_after_seconds": 30}), "rate_limited"),
        (0, json.dumps({"status": "rate_limited", "retry_after_seconds": "soon"}), "rate_limited"),
        (0, "{not json", "error"),
        (0, json.dumps({"status": "weird"}), "error"),
        (1, json.dumps({"status": "done"}), "crash"),
        (None, None, "crash"),
    ],
)
def test_classify_exit(exit_code: int | None, signal: str | None, kind: str) -> None:
    assert dispatch.classify_exit(exit_code, signal).kind == kind


def test_classify_exit_keeps_the_details() -> None:
    done = dispatch.classify_exit(0, json.dumps({"status": "done", "summary": "wrote it"}))
    assert done.summary == "wrote it"
    limited = dispatch.classify_exit(0, json.dumps({"status": "rate_limited", "retry_after_seconds": 30}))
    assert limited.retry_after_seconds == 30


def test_prompt_holds_description_and_dependency_summaries() -> None:
    task = _task("t", name="Write API", description="Add the endpoints.")
    dependencies = [_task("d", name="Schema", summary="tables created"), _task("e", name="Empty")]
    prompt = dispatch.build_prompt(task, dependencies)
    assert "Add the endpoints." in prompt and "- Schema (task d, no agent yet, pending): tables created" in prompt


def test_an_execute_prompt_names_whom_it_may_ask() -> None:
    """Before, dependencies were listed by title only, while `"to"` wants a task id or an agent."""
    task = _task("t", name="Write API")
    sibling = dispatch.Neighbour(_task("s", name="Docs"), "tidy-jackal")
    prompt = dispatch.build_prompt(task, [_task("d", name="Schema", summary="done")], [sibling], {"d": "busy-otter"})
    assert "- Schema (task d, agent busy-otter, pending): done" in prompt
    assert "## The other tasks of this phase\n- Docs (task s, agent tidy-jackal, pending)" in prompt
    assert '"status": "ask", "to": "TASK_ID or AGENT_NAME"' in prompt
    assert '"ask"' not in dispatch.build_prompt(task, [])  # nobody to ask: not offered


def test_every_run_kind() -> None:
    kinds = {
        dispatch.RunKind.MERGE: _task("m", category=task_pb2.TASK_CATEGORY_MERGE),
        dispatch.RunKind.REVIEW: _task("r", category=task_pb2.TASK_CATEGORY_REVIEW),
        dispatch.RunKind.REVISION: task_pb2.Task(id="v", review_comment_ids=["c1"]),
        dispatch.RunKind.PLAN: _task("p", category=task_pb2.TASK_CATEGORY_PLAN),
        dispatch.RunKind.EXECUTE: _task("e"),
    }
    assert {kind: dispatch.run_kind(task) for kind, task in kinds.items()} == {kind: kind for kind in kinds}


def test_providers() -> None:
    assert parse_provider("fake=python3 -m agent --flag 'a b'") == Provider(
        "fake", ("python3", "-m", "agent", "--flag", "a b")
    )
    for bad in ("noequals", "=cmd", "name="):
        with pytest.raises(ValueError):
            parse_provider(bad)
    table = provider_table(["fake=run"])
    assert set(table) == {"claude", "codex", "gemini", "opencode", "fake"}
    claude = table["claude"].command("sid", resume=False)
    assert claude[:2] == ["claude", "-p"] and claude[-2:] == ["--session-id", "sid"]
    assert table["claude"].command("sid", resume=True)[-2:] == ["--resume", "sid"]
    assert table["fake"].command("sid", resume=True) == ["run"]


def test_backoff_doubles_up_to_its_ceiling_and_resets() -> None:
    backoff = dispatch.Backoff()
    assert [backoff.next_delay() for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 0.1


def test_relative_programs_and_scripts_resolve_against_the_starting_directory(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "mine.py").write_text("print('hi')")
    table = provider_table(
        ["mine=python3 agents/mine.py --fast missing.py", "local=./agents/mine.py"], directory=tmp_path
    )
    assert table["mine"].argv == ("python3", str(tmp_path / "agents" / "mine.py"), "--fast", "missing.py")
    assert table["local"].argv == (str(tmp_path / "agents" / "mine.py"),)
    assert table["mine"].missing_program() is None
    assert "not found" in (parse_provider("ghost=/nowhere/ghost-agent").missing_program() or "")
