"""How the CLI shows planning, fed with messages made by hand: proposals as a tree of phases and
tasks with what each waits for, edits as diffs, pages as a tree, a chat as a transcript."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, RenderableType

from clients.cli.planning_views import Existing, chat_transcript, page_tree, proposal_detail, proposals_tree, text_diff
from cw.store.v1 import chat_session_pb2, page_pb2, proposal_pb2, task_pb2

PHASE, TASK, PAGE = (
    proposal_pb2.PROPOSAL_TARGET_TYPE_PHASE,
    proposal_pb2.PROPOSAL_TARGET_TYPE_TASK,
    proposal_pb2.PROPOSAL_TARGET_TYPE_PAGE,
)


def text(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def proposal(proposal_id: str, target_type: int, title: str, **fields: Any) -> proposal_pb2.Proposal:
    made = proposal_pb2.Proposal(id=proposal_id, agent_id="a", report_id="r", title=title, **fields)
    made.target_type = target_type  # type: ignore[assignment]
    return made


def test_proposed_tasks_sit_under_their_phases_with_dependencies_by_name() -> None:
    proposals = [
        proposal("x1", PHASE, "Schema", key="p1"),
        proposal("x2", PHASE, "Server", key="p2", depends_on=["p1", "old-phase"]),
        proposal("x3", TASK, "Users table", key="t1", parent="p1", priority=task_pb2.TASK_PRIORITY_HIGH),
        proposal("x4", TASK, "Sessions table", key="t2", parent="p1", depends_on=["t1"]),
        proposal("x5", TASK, "Health check", parent="old-phase"),
    ]
    shown = text(proposals_tree(proposals, {"old-phase": Existing("Setup")}))
    lines = shown.splitlines()
    assert lines[0] == "5 proposals"
    schema = next(i for i, line in enumerate(lines) if "new phase Schema" in line)
    assert "new task Users table (high)" in lines[schema + 1] and "new task Sessions table" in lines[schema + 2]
    assert "after: Users table" in lines[schema + 2]
    assert "after: Schema, Setup" in next(line for line in lines if "new phase Server" in line)
    setup = next(i for i, line in enumerate(lines) if line.endswith("phase Setup"))
    assert "new task Health check" in lines[setup + 1]


def test_an_edit_reads_as_a_diff_of_the_text_now() -> None:
    edit = proposal("x1", PAGE, "Idea", target_id="page-1", content="# Idea\nSell socks.\nAnd shoes.\n")
    shown = text(proposals_tree([edit], {"page-1": Existing("Idea", "# Idea\nSell socks.\n")}))
    assert "edit of page Idea" in shown and "+And shoes." in shown and "-Sell socks." not in shown
    renamed = proposal("x2", TASK, "New name", target_id="task-1")
    assert "edit of task Old name -> New name" in text(proposals_tree([renamed], {"task-1": Existing("Old name")}))
    assert "(no change to the text)" in text(text_diff("same", "same", "x"))


def test_one_proposal_in_detail() -> None:
    made = proposal("x1", TASK, "Routes", parent="phase-1", summary="why", content="Add /login.")
    shown = text(proposal_detail(made, {"phase-1": Existing("Build")}))
    assert "new task Routes" in shown and "in: Build" in shown and "Add /login." in shown
    assert text(proposals_tree([], {})).strip() == "no proposals"


def test_pages_under_their_parents() -> None:
    pages = [
        page_pb2.Page(id="r", title="Shop"),
        page_pb2.Page(id="b", title="Billing", parent_page_id="r", content="one\ntwo"),
        page_pb2.Page(id="c", title="Cards", parent_page_id="b"),
    ]
    lines = text(page_tree(pages)).splitlines()
    assert lines[0] == "Shop r" and "Billing b · 2 lines" in lines[1] and "Cards c · empty" in lines[2]
    assert lines[2].index("Cards") > lines[1].index("Billing")


def test_a_chat_transcript_shows_each_replys_changes_and_whether_they_stand() -> None:
    user, agent = chat_session_pb2.CHAT_ROLE_USER, chat_session_pb2.CHAT_ROLE_ASSISTANT
    messages = [
        chat_session_pb2.ChatMessage(id="1", role=user, content="Rename it."),
        chat_session_pb2.ChatMessage(id="2", role=agent, content="Renamed.", change_set_id="cs"),
    ]
    entry = chat_session_pb2.ChangeSetEntry(entity_type=chat_session_pb2.CHANGE_ENTITY_TYPE_TASK)
    change_set = chat_session_pb2.ChangeSet(
        id="cs", status=chat_session_pb2.CHANGE_SET_STATUS_REVERTED, entries=[entry]
    )
    shown = text(chat_transcript(messages, {"cs": change_set}))
    assert shown.splitlines()[:4] == ["you:", "Rename it.", "agent:", "Renamed."]
    assert "changes cs: 1 reverted" in shown
