"""Planning's pure parts: a report read into proposals (or refused with the first problem named),
what a run is shown and its prompt, chat messages left to answer."""

from __future__ import annotations

from typing import Any

import pytest

from cw.store.v1 import chat_session_pb2, initiative_pb2, page_pb2, phase_pb2, proposal_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.planning.chat import unanswered
from orchestrator_service.planning.prompts import Material, planning_prompt
from orchestrator_service.planning.report import BadReport, RunView, Shown, proposals_of

STAMP = "2026-01-02T03:04:05.123456Z"
VIEW = RunView(
    {
        "page-1": Shown("page", "page-1", "Idea", STAMP),
        "phase-1": Shown("phase", "phase-1", "Build", STAMP),
        "task-1": Shown("task", "task-1", "Old task", STAMP),
    },
    default_phase="phase-1",
)


def read(*proposals: dict[str, Any], view: RunView = VIEW) -> list[proposal_pb2.Proposal]:
    return proposals_of(
        {"status": "done", "proposals": list(proposals)}, view, agent_id="a", initiative_id="i", report_id="r"
    )


def refusal(*proposals: Any, view: RunView = VIEW) -> str:
    with pytest.raises(BadReport) as refused:
        proposals_of({"proposals": list(proposals)}, view, agent_id="a", initiative_id="i", report_id="r")
    return str(refused.value)


def test_keys_and_ids_become_references_and_targets_carry_what_was_read() -> None:
    phase, task, edit = read(
        {"key": "p1", "target_type": "phase", "title": "API", "depends_on": ["phase-1"], "owner": "me"},
        {
            "key": "t1",
            "target_type": "task",
            "phase": "p1",
            "title": "Routes",
            "priority": "High",
            "category": "verify",
        },
        {"target_type": "page", "target_id": "page-1", "content": "# Decided"},
    )
    assert (phase.key, list(phase.depends_on), phase.metadata) == ("p1", ["phase-1"], '{"owner": "me"}')
    assert (task.parent, task.priority, task.category) == (
        "p1",
        task_pb2.TASK_PRIORITY_HIGH,
        task_pb2.TASK_CATEGORY_VERIFY,
    )
    assert edit.target_id == "page-1" and edit.title == "Idea" and edit.target_update_time.ToJsonString() == STAMP
    assert [p.sort_order for p in (phase, task, edit)] == [0, 1, 2]
    assert {p.report_id for p in (phase, task, edit)} == {"r"} and phase.status == proposal_pb2.PROPOSAL_STATUS_PENDING


def test_a_new_task_without_a_phase_goes_to_the_runs_phase_and_nowhere_without_one() -> None:
    (task,) = read({"target_type": "task", "title": "Loose"})
    assert task.parent == "phase-1"
    assert "a new task needs its phase" in refusal({"target_type": "task", "title": "Loose"}, view=RunView())


def test_no_proposals_is_an_empty_report() -> None:
    assert proposals_of({"status": "done"}, VIEW, agent_id="a", initiative_id="i", report_id="r") == []


@pytest.mark.parametrize(
    ("proposals", "problem"),
    [
        (["just a string"], "proposals[0]: must be an object"),
        ([{"target_type": "milestone"}], "proposals[0].target_type: unknown target type 'milestone'"),
        ([{"title": "x"}], "proposals[0].target_type: unknown target type none"),
        ([{"target_type": "phase"}], "proposals[0].title: a new phase needs a title"),
        ([{"target_type": "task", "phase": "p9", "title": "x"}], "proposals[0].phase: unknown key or id 'p9'"),
        ([{"target_type": "task", "phase": "task-1", "title": "x"}], "proposals[0].phase: unknown key or id 'task-1'"),
        (
            [{"target_type": "phase", "target_id": "nope"}],
            "proposals[0].target_id: 'nope' is no phase this run was shown",
        ),
        ([{"target_type": "phase", "target_id": "page-1"}], "is no phase this run was shown"),
        (
            [{"key": "k", "target_type": "phase", "title": "a"}, {"key": "k", "target_type": "phase", "title": "b"}],
            "proposals[1].key: 'k' is used twice",
        ),
        ([{"key": "k", "target_type": "phase", "title": "a", "depends_on": ["k"]}], "cannot depend on itself"),
        ([{"target_type": "phase", "title": "a", "depends_on": "p1"}], "depends_on: must be a list"),
        ([{"target_type": "page", "title": "a", "depends_on": ["page-1"]}], "pages have no dependencies"),
        (
            [{"target_type": "task", "title": "a", "priority": "urgent"}],
            "proposals[0].priority: 'urgent' is not one of low, medium, high",
        ),
        ([{"target_type": "phase", "title": 7}], "proposals[0].title: must be a string, not int"),
    ],
)
def test_a_bad_report_names_its_first_problem(proposals: list[Any], problem: str) -> None:
    assert problem in refusal(*proposals)


def test_reports_too_large_or_not_lists_are_refused() -> None:
    with pytest.raises(BadReport, match="must be a list"):
        proposals_of({"proposals": {"a": 1}}, VIEW, agent_id="a", initiative_id="i", report_id="r")
    many = [{"target_type": "phase", "title": str(n)} for n in range(201)]
    assert "at most 200" in refusal(*many)
    large = [{"target_type": "phase", "title": str(n), "content": "x" * 900_000} for n in range(3)]
    assert "at most 2 MiB in one report" in refusal(*large)


def test_a_view_survives_its_file() -> None:
    chat_view = RunView(VIEW.shown, "phase-1", "session-1", "message-3")
    assert RunView.from_json(chat_view.to_json()) == chat_view


def test_a_done_signal_keeps_its_report_and_broken_ones_say_why() -> None:
    done = dispatch.classify_exit(0, '{"status": "done", "summary": "s", "proposals": []}')
    assert done.report == {"status": "done", "summary": "s", "proposals": []}
    assert dispatch.classify_exit(0, '{"status": "done", "proposals": [}').error.startswith(
        "unreadable signal file: not JSON"
    )
    assert "no object" in dispatch.classify_exit(0, "[1, 2]").error


def _material(**values: Any) -> Material:
    task = task_pb2.Task(
        id="t", name="Detail Build", category=task_pb2.TASK_CATEGORY_DETAIL, description="Small steps."
    )
    return Material("detail", task, initiative_pb2.Initiative(id="i", name="Shop"), **values)


def test_a_detail_run_is_shown_its_phase_pages_and_tasks_and_its_view_holds_them() -> None:
    page = page_pb2.Page(id="page-1", title="Idea", content="Sell socks.")
    first, second = phase_pb2.Phase(id="phase-0", name="Setup"), phase_pb2.Phase(id="phase-1", name="Build")
    task = task_pb2.Task(id="task-1", name="Catalog", phase_id="phase-1", description="List the socks.")
    material = _material(
        pages=[page],
        phases=[first, second],
        phase_edges={"phase-1": ["phase-0"]},
        tasks=[task],
        target_kind="phase",
        target=second,
    )
    prompt = planning_prompt(material)
    for expected in (
        "Sell socks.",
        "Build (phase phase-1, unspecified; after: Setup)",
        "Catalog (task task-1",
        "Small steps.",
    ):
        assert expected in prompt
    assert prompt.index("Small steps.") > prompt.index("Catalog")  # the person's words come last
    assert "Propose the tasks of the phase" in prompt and "$CW_SIGNAL_FILE" in prompt
    view = material.view()
    assert set(view.shown) == {"page-1", "phase-0", "phase-1", "task-1"} and view.default_phase == "phase-1"
    assert view.shown["phase-1"].update_time == second.update_time.ToJsonString()


def test_a_chat_turn_is_told_the_conversation_and_answers_the_newest_message() -> None:
    user, assistant = chat_session_pb2.CHAT_ROLE_USER, chat_session_pb2.CHAT_ROLE_ASSISTANT
    messages = [
        chat_session_pb2.ChatMessage(id="m1", role=user, content="Rename it."),
        chat_session_pb2.ChatMessage(id="m2", role=assistant, content="Renamed."),
        chat_session_pb2.ChatMessage(id="m3", role=user, content="Shorter."),
        chat_session_pb2.ChatMessage(id="m4", role=user, content="Much shorter."),
    ]
    material = _material(chat_session_id="s", messages=messages, target_kind="task", target=task_pb2.Task(id="x"))
    prompt = planning_prompt(material)
    assert "A person is talking with you" in prompt and "Much shorter." in prompt and "Small steps." not in prompt
    assert material.view().answering == "m4" and material.view().chat_session_id == "s"
    assert [m.id for m in unanswered(messages)] == ["m3", "m4"]
    assert [m.id for m in unanswered(messages, after="m3")] == ["m4"]
    assert unanswered(messages, after="m4") == []
