"""The CLI's pure parts of review and the inbox: where a comment goes in a diff, comments shown under
their lines, and what the inbox lists, newest first, with the command that handles each item."""

from __future__ import annotations

import json
from typing import TypeVar

import click
import pytest
from google.protobuf.message import Message

from clients.cli import diff_views
from clients.cli.commands import review
from clients.cli.commands.inbox import Snapshot, inbox_items
from clients.cli.diff_views import Place
from clients.sdk import InvalidArgumentError
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    project_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)
from tests.support import SMALL_DIFF


def _diff(*projects: str, unified: str = SMALL_DIFF) -> orch.GetPhaseDiffResponse:
    return orch.GetPhaseDiffResponse(
        projects=[orch.ProjectDiff(project_id=f"id-{p}", project_name=p, unified_diff=unified) for p in projects]
    )


def test_a_place_is_file_and_line() -> None:
    assert review.split_place("src/a:b.py:12") == ("src/a:b.py", 12)
    for bad in ("a.txt", "a.txt:", "a.txt:0", ":3", "a.txt:x"):
        with pytest.raises(click.BadParameter):
            review.split_place(bad)


def test_the_line_type_comes_from_the_diff() -> None:
    one = _diff("app")
    assert diff_views.place_in_diff(one, "a.txt", 2) == Place("id-app", "app", "a.txt", "added")
    assert diff_views.place_in_diff(one, "a.txt", 1).kind == "context"
    assert diff_views.place_in_diff(one, "a.txt", 2, old=True).kind == "removed"
    for path, line in (("b.txt", 1), ("a.txt", 7)):
        with pytest.raises(InvalidArgumentError):
            diff_views.place_in_diff(one, path, line)
    two = _diff("app", "web")
    with pytest.raises(InvalidArgumentError, match=r"several projects' diffs \(app, web\): name one with --project"):
        diff_views.place_in_diff(two, "a.txt", 2)
    assert diff_views.place_in_diff(two, "web/a.txt", 2) == Place("id-web", "web", "a.txt", "added")
    assert diff_views.place_in_diff(two, "a.txt", 2, project="web") == Place("id-web", "web", "a.txt", "added")
    assert diff_views.place_in_diff(two, "a.txt", 2, project="id-app").project_id == "id-app"


NAMED_LIKE_ITS_PROJECT = SMALL_DIFF.replace("a.txt", "inflection/__init__.py")


def test_a_path_that_starts_with_the_project_name_is_the_project_own_path() -> None:
    """Before, in project `inflection`, `inflection/__init__.py` lost its comments (the CLI took
    the first part for the project's name)."""
    diff = _diff("inflection", unified=NAMED_LIKE_ITS_PROJECT)
    place = diff_views.place_in_diff(diff, "inflection/__init__.py", 2)
    assert place == Place("id-inflection", "inflection", "inflection/__init__.py", "added")
    comment = review_comment_pb2.ReviewComment(
        id="c1", project_id=place.project_id, file_path=place.path, line_number=2,
        line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED, body="why?",
    )  # fmt: skip
    lines = diff_views.annotated(NAMED_LIKE_ITS_PROJECT, diff.projects[0], [comment])
    assert lines[lines.index("+new") + 1] == "  >> [c1] you: why?"
    other = orch.ProjectDiff(project_id="id-other", project_name="other", unified_diff=NAMED_LIKE_ITS_PROJECT)
    assert "  >> [c1] you: why?" not in diff_views.annotated(NAMED_LIKE_ITS_PROJECT, other, [comment])


def test_comments_show_under_their_lines() -> None:
    comments = [
        review_comment_pb2.ReviewComment(
            id="c1", project_id="id-app", file_path="a.txt", line_number=2,
            line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED, body="why?",
        ),
        review_comment_pb2.ReviewComment(  # stored before comments had their project: by its path
            id="c2", file_path="app/a.txt", line_number=2, line_type=review_comment_pb2.REVIEW_LINE_TYPE_REMOVED,
            body="keep", author="tidy-jackal",
        ),
    ]  # fmt: skip
    lines = diff_views.annotated(SMALL_DIFF, _diff("app").projects[0], comments)
    assert lines[lines.index("-old") + 1] == "  >> [c2] tidy-jackal: keep"
    assert lines[lines.index("+new") + 1] == "  >> [c1] you: why?"
    assert len(lines) == len(SMALL_DIFF.splitlines()) + 2


M = TypeVar("M", bound=Message)


def _stamp(message: M, seconds: int, field: str = "update_time") -> M:
    getattr(message, field).FromSeconds(seconds)
    return message


def test_the_inbox_lists_what_waits_newest_first() -> None:
    person = json.dumps([{"id": "q1", "question": "tabs?"}])
    other_agent = json.dumps([{"id": "c1", "question": "?", "to": "b"}])
    snapshot = Snapshot(
        waiting=[
            _stamp(agent_pb2.Agent(id="a1", name="tidy-jackal", pending_questions=person), 10),
            _stamp(agent_pb2.Agent(id="a2", name="busy-otter", pending_questions=other_agent), 99),
        ],
        in_review=[_stamp(phase_pb2.Phase(id="p1", name="Schema"), 20)],
        blocked=[
            _stamp(task_pb2.Task(id="t1", name="users", reason="crashed\n--- last output ---\nboom"), 30),
            _stamp(task_pb2.Task(id="m1", name="merge", category=task_pb2.TASK_CATEGORY_MERGE), 40),
        ],
        proposals=[_stamp(proposal_pb2.Proposal(id="pr1", title="a phase"), 50)],
        messages=[_stamp(message_pb2.Message(id="ms1", sender_id="a1", content="hello"), 60, "create_time")],
        projects=[
            _stamp(project_pb2.Project(id="pj1", name="ghost", sync_error="no such path"), 70, "sync_error_time"),
            project_pb2.Project(id="pj2", name="fine"),
        ],
        deliverable=[_stamp(initiative_pb2.Initiative(id="i1", name="User auth"), 80)],
        agent_names={"a1": "tidy-jackal"},
    )
    items = inbox_items(snapshot)
    assert [(i.kind, i.id) for i in items] == [
        ("ready to deliver", "i1"),
        ("sync failure", "pj1"),
        ("message", "ms1"),
        ("proposal", "pr1"),
        ("merge conflict", "m1"),
        ("blocked", "t1"),
        ("review", "p1"),
        ("question", "a1"),
    ]
    commands = {i.id: i.command for i in items}
    assert commands["a1"] == "cw agent answer tidy-jackal" and commands["t1"] == "cw task retry t1"
    assert commands["ms1"] == 'cw reply ms1 "..."' and commands["pj1"] == "cw project edit pj1 --url URL"
    assert commands["pr1"].startswith("cw proposals accept pr1") and "cw phase merge p1" in commands["p1"]
    assert "boom" in next(i.detail for i in items if i.id == "t1")
    assert "tidy-jackal" in next(i.title for i in items if i.id == "ms1")
    assert commands["i1"] == "cw initiative diff i1; then cw initiative deliver i1"
    assert "User auth is ready to deliver" in next(i.title for i in items if i.id == "i1")


def test_an_account_whose_credential_was_refused_is_in_the_inbox_until_updated() -> None:
    refused = account_pb2.Account(id="ac1", email="dev@example.com", provider="claude", unusable_reason="Not logged in")
    snapshot = Snapshot(accounts=[_stamp(refused, 10), account_pb2.Account(id="ac2", email="ok@example.com")])
    [item] = inbox_items(snapshot)
    assert (item.kind, item.id, item.detail) == ("account refused", "ac1", "Not logged in")
    assert item.command == "cw account update ac1 --credentials-file F" and "dev@example.com" in item.title


def test_an_agent_waiting_only_for_replies_is_listed_as_its_messages() -> None:
    replies_only = json.dumps([{"id": "ms1", "question": "which db?", "kind": "message"}])
    mixed = json.dumps([{"id": "ms2", "question": "which db?", "kind": "message"}, {"id": "q1", "question": "tabs?"}])
    snapshot = Snapshot(
        waiting=[
            _stamp(agent_pb2.Agent(id="a1", name="tidy-jackal", pending_questions=replies_only), 10),
            _stamp(agent_pb2.Agent(id="a2", name="busy-otter", pending_questions=mixed), 20),
        ],
        messages=[_stamp(message_pb2.Message(id="ms1", sender_id="a1", content="which db?"), 5, "create_time")],
    )
    items = {(i.kind, i.id): i for i in inbox_items(snapshot)}
    assert set(items) == {("message", "ms1"), ("question", "a2")}
    assert items["question", "a2"].detail == "which db?\ntabs?"  # `cw agent answer` answers both
