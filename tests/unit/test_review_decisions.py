"""Pure decisions of review and repair: revision prompts, resolved and reported comments, merge
tasks, messages, and the new reports of the signal file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, message_pb2, phase_pb2, review_comment_pb2, task_pb2
from cw_edge import diffs
from orchestrator_service import dispatch, outcomes
from orchestrator_service.review import comments, merge_tasks
from orchestrator_service.review.delivery import repeats_delivery
from orchestrator_service.runs.messages import messages_from
from tests.support import SMALL_DIFF

FILES = [comments.ProjectFiles("id-app", "app", diffs.by_path(SMALL_DIFF))]


def _comment(comment_id: str, line: int, kind: Any, body: str = "fix it") -> review_comment_pb2.ReviewComment:
    return review_comment_pb2.ReviewComment(
        id=comment_id, file_path="a.txt", line_number=line, line_type=kind, body=body, author="you"
    )


def test_a_revision_prompt_holds_every_comment_with_its_place_and_hunk() -> None:
    found = [
        _comment("c1", 2, review_comment_pb2.REVIEW_LINE_TYPE_ADDED, "why new?"),
        _comment("c2", 2, review_comment_pb2.REVIEW_LINE_TYPE_REMOVED, "keep old"),
        review_comment_pb2.ReviewComment(id="c3", file_path="gone.txt", line_number=1, body="elsewhere"),
    ]
    prompt = comments.revision_prompt("Schema", found, FILES)
    assert "## Comment c1 on a.txt:2 (added) in project app, by you" in prompt and "why new?" in prompt
    assert "## Comment c2 on a.txt:2 (removed)" in prompt and prompt.count("```diff") == 2
    assert "@@ -1,2 +1,2 @@\n keep\n-old\n+new" in prompt
    assert "## Comment c3 on gone.txt:1" in prompt and '"resolved_comments"' in prompt


def test_only_comments_given_to_the_revision_are_resolved() -> None:
    task = task_pb2.Task(review_comment_ids=["c1", "c2"])
    assert comments.resolved_by(task, {"resolved_comments": ["c2", "c9", "c2", 3, "c1"]}) == ["c2", "c1"]
    assert comments.resolved_by(task, {"resolved_comments": "c1"}) == []
    assert comments.resolved_by(task, {}) == []


def test_a_review_agent_s_comments_take_their_line_type_from_the_diff_and_its_checks_from_a_person_s() -> None:
    report = {
        "review_comments": [
            {"file": "a.txt", "line": 2, "body": "new what?"},
            {"file": "a.txt", "line": "2", "side": "old", "body": "was fine"},
            {"file": "app/a.txt", "line": 1, "body": "context"},
            {"file": "a.txt", "line": 40, "body": "outside the diff"},
            {"file": "a.txt", "line": 999999, "body": "far outside the file"},
            {"file": "../../../etc/passwd", "line": 1, "body": "outside the worktree"},
            {"file": "app/../a.txt", "line": 1, "body": "a dot-dot part"},
            {"file": "/a.txt", "line": 1, "body": "absolute"},
            {"file": "b.txt", "line": 1, "body": "a file the diff does not touch"},
            {"file": "a.txt", "line": 0, "body": "no line"},
            {"file": "a.txt", "line": True, "body": "not a number"},
            {"file": "", "line": 1, "body": "no file"},
            {"file": "a.txt", "line": 1, "body": "  "},
            "not an object",
        ]
    }
    found = comments.from_report(report, "ph", "tidy-jackal", FILES)
    kinds = [(c.file_path, c.line_number, c.line_type) for c in found]
    assert kinds == [
        ("a.txt", 2, review_comment_pb2.REVIEW_LINE_TYPE_ADDED),
        ("a.txt", 2, review_comment_pb2.REVIEW_LINE_TYPE_REMOVED),
        ("a.txt", 1, review_comment_pb2.REVIEW_LINE_TYPE_CONTEXT),  # `app/` was the project's name
    ]
    assert {c.project_id for c in found} == {"id-app"}
    assert {(c.author, c.phase_id) for c in found} == {("tidy-jackal", "ph")}
    many = {"review_comments": [{"file": "a.txt", "line": 2, "body": "x" * 40000}] * 80}
    capped = comments.from_report(many, "ph", "a", FILES)
    assert len(capped) == comments.MAX_AGENT_COMMENTS and len(capped[0].body.encode()) <= comments.BODY_BYTES


def test_comments_carry_their_project_and_a_path_in_it() -> None:
    """A path that starts with its project's name is the project's own path, and with
    several projects a comment says whose file it is."""
    own = SMALL_DIFF.replace("a.txt", "inflection/__init__.py")
    files = [
        comments.ProjectFiles("id-inflection", "inflection", diffs.by_path(own)),
        comments.ProjectFiles("id-app", "app", diffs.by_path(SMALL_DIFF)),
    ]
    report = {
        "review_comments": [
            {"file": "inflection/__init__.py", "line": 2, "body": "own path"},
            {"project": "app", "file": "a.txt", "line": 2, "body": "named project"},
            {"file": "app/a.txt", "line": 2, "body": "prefixed, as the prompt used to ask"},
            {"project": "inflection", "file": "a.txt", "line": 2, "body": "not a file of its project: left out"},
        ]
    }
    found = [(c.project_id, c.file_path, c.line_type) for c in comments.from_report(report, "ph", "a", files)]
    added = review_comment_pb2.REVIEW_LINE_TYPE_ADDED
    assert found == [
        ("id-inflection", "inflection/__init__.py", added),
        ("id-app", "a.txt", added),
        ("id-app", "a.txt", added),
    ]
    comment = review_comment_pb2.ReviewComment(
        id="c1", project_id="id-inflection", file_path="inflection/__init__.py", line_number=2,
        line_type=added, body="b",
    )  # fmt: skip
    prompt = comments.revision_prompt("P", [comment], files)
    assert "## Comment c1 on inflection/__init__.py:2 (added) in project inflection" in prompt
    assert "```diff\n@@ -1,2 +1,2 @@" in prompt  # the hunk found in its project


def test_a_comment_names_its_project_where_several_diffs_hold_its_path() -> None:
    both = [
        comments.ProjectFiles("id-app", "app", diffs.by_path(SMALL_DIFF)),
        comments.ProjectFiles("id-lib", "lib", diffs.by_path(SMALL_DIFF)),
    ]
    assert comments.place(both, "a.txt", 2) is None  # ambiguous, as for a person
    assert comments.place(both, "lib/a.txt", 2) == ("id-lib", "a.txt", diffs.ADDED)
    assert comments.place(both, "lib/a.txt", 2, removed=True) == ("id-lib", "a.txt", diffs.REMOVED)
    assert comments.place(both, "a.txt", 2, project_id="id-app") == ("id-app", "a.txt", diffs.ADDED)


def test_a_review_prompt_shows_the_diff_and_cuts_a_huge_one() -> None:
    prompt = comments.review_prompt([("app", SMALL_DIFF), ("big", "+" + "x" * (comments.DIFF_PROMPT_BYTES * 2))])
    assert "### Project app" in prompt and "+new" in prompt and '"review_comments"' in prompt
    assert len(prompt.encode()) < comments.DIFF_PROMPT_BYTES + 4096


def _task(**fields: object) -> task_pb2.Task:
    return task_pb2.Task(**fields)  # type: ignore[arg-type]


def test_a_task_conflict_becomes_a_merge_task_with_both_sides() -> None:
    source = _task(id="t1", name="left", phase_id="p", initiative_id="i", summary="wrote left")
    merged = [_task(id="t2", name="right", summary="wrote right"), _task(id="t3", name="quiet")]
    conflict = merge_tasks.Conflict("app", ["shared.txt"], "cw-phase/p")
    made = merge_tasks.for_task(source, conflict, merged).task
    assert (made.category, made.phase_id, made.merge_source_task_id) == (task_pb2.TASK_CATEGORY_MERGE, "p", "t1")
    assert made.priority == task_pb2.TASK_PRIORITY_HIGH and made.name == "Resolve merge conflict: left"
    assert "these files of project app (paths in the project, in its directory app/):\n- shared.txt\n" in (
        made.description
    )
    assert "the merge is committed" in made.description
    for needed in ("- left: wrote left", "- right: wrote right", "- quiet: (no summary)"):
        assert needed in made.description
    assert "cw-phase/p" in merge_tasks.conflict_reason(conflict) and "shared.txt" in merge_tasks.conflict_reason(
        conflict
    )
    queued = Timestamp(seconds=5)
    loose = merge_tasks.for_task(_task(id="t", name="n", initiative_id="i", queue_time=queued), conflict, []).task
    assert loose.queue_time == queued and not loose.phase_id


def test_a_phase_conflict_becomes_a_merge_task_of_that_phase() -> None:
    phase = phase_pb2.Phase(id="p", name="API", initiative_id="i")
    conflict = merge_tasks.Conflict("app", ["a.py"], "cw/x")
    made = merge_tasks.for_phase(
        phase, conflict, [_task(name="own", summary="s")], [("Schema", [_task(name="t")])]
    ).task
    assert (made.phase_id, made.merge_source_phase_id, made.merge_source_task_id) == ("p", "p", "")
    assert "Phase Schema:" in made.description and "- own: s" in made.description


def test_a_source_waits_for_its_unmerged_merge_task_only() -> None:
    merged_at = Timestamp(seconds=1)
    waiting = [_task(id="m", merge_source_task_id="t1")]
    assert merge_tasks.resolving(waiting, "t1") is not None and merge_tasks.resolving(waiting, "t2") is None
    assert merge_tasks.resolving([_task(id="m", merge_source_task_id="t1", merge_time=merged_at)], "t1") is None
    assert merge_tasks.is_merge_task(_task(merge_source_phase_id="p")) and not merge_tasks.is_merge_task(_task())


def _agent(seconds: int, outcome: int) -> agent_pb2.Agent:
    agent = agent_pb2.Agent(outcome=outcome)  # type: ignore[arg-type]
    agent.create_time.FromSeconds(seconds)
    return agent


def test_a_task_blocked_after_its_work_was_done_was_blocked_by_its_merge() -> None:
    blocked = _task(status=task_pb2.TASK_STATUS_BLOCKED)
    done, crashed = agent_pb2.AGENT_OUTCOME_DONE, agent_pb2.AGENT_OUTCOME_CRASHED
    assert merge_tasks.blocked_by_conflict(blocked, [_agent(1, crashed), _agent(2, done)])
    assert not merge_tasks.blocked_by_conflict(blocked, [_agent(2, crashed), _agent(1, done)])
    assert not merge_tasks.blocked_by_conflict(blocked, [])
    assert not merge_tasks.blocked_by_conflict(_task(status=task_pb2.TASK_STATUS_PENDING), [_agent(1, done)])


def test_signal_reports_ride_with_the_outcome() -> None:
    done = dispatch.classify_exit(0, json.dumps({"status": "done", "summary": "s", "resolved_comments": ["c1"]}))
    assert done.kind == dispatch.OutcomeKind.DONE and done.report["resolved_comments"] == ["c1"]
    ask = dispatch.classify_exit(0, json.dumps({"status": "ask", "to": "t", "question": "q"}))
    answer = dispatch.classify_exit(0, json.dumps({"status": "answer", "answer": "a"}))
    assert (ask.kind, answer.kind, answer.report["answer"]) == ("ask", "answer", "a")
    assert dispatch.classify_exit(0, "[1, 2]").kind == dispatch.OutcomeKind.ERROR
    assert not dispatch.merges_work(_task(category=task_pb2.TASK_CATEGORY_REVIEW))
    assert dispatch.merges_work(_task(category=task_pb2.TASK_CATEGORY_MERGE)) and dispatch.merges_work(_task())
    assert not dispatch.merges_work(_task(category=task_pb2.TASK_CATEGORY_PLAN))


def test_an_answer_nobody_asked_for_is_a_failed_attempt() -> None:
    agent = agent_pb2.Agent(id="a")
    task = _task(id="t", status=task_pb2.TASK_STATUS_IN_PROGRESS)
    settled = outcomes.settle(
        agent, task, dispatch.AgentOutcome(dispatch.OutcomeKind.ANSWER, exit_code=0), datetime.now(UTC)
    )
    assert settled.agent["status"] == agent_pb2.AGENT_STATUS_CRASHED and "nobody asked for" in settled.agent["error"]
    assert settled.task is not None and settled.task["retry_count"] == 1


def test_messages_from_a_report() -> None:
    agent = agent_pb2.Agent(id="a")
    report = {"messages": ["fyi", {"content": "decide?", "requires_response": True}, {"content": ""}, 7]}
    found = [request.message for request in messages_from(report, agent)]
    assert [(m.content, m.type, m.requires_response) for m in found] == [
        ("fyi", message_pb2.MESSAGE_TYPE_INFO, False),
        ("decide?", message_pb2.MESSAGE_TYPE_QUESTION, True),
    ]
    assert {(m.sender_type, m.sender_id, m.recipient_type) for m in found} == {
        (message_pb2.PARTICIPANT_TYPE_AGENT, "a", message_pb2.PARTICIPANT_TYPE_USER)
    }
    assert messages_from({"messages": "not a list"}, agent) == []


def test_a_delivery_repeats_only_when_completed_with_the_same_branch_and_commits() -> None:
    delivered = event_pb2.Event(type="initiative:delivered")
    delivered.details.update({"branch": "cw/x", "projects": ["p1"], "commits": {"p1": "abc"}})
    done = initiative_pb2.Initiative(id="i", status=initiative_pb2.INITIATIVE_STATUS_COMPLETED)
    active = initiative_pb2.Initiative(id="i", status=initiative_pb2.INITIATIVE_STATUS_ACTIVE)
    assert repeats_delivery(done, delivered, "cw/x", {"p1": "abc"})
    assert not repeats_delivery(done, delivered, "cw/x", {"p1": "def"})  # new work: delivered again
    assert not repeats_delivery(done, delivered, "cw/x", {"p1": "abc", "p2": "abc"})
    assert not repeats_delivery(active, delivered, "cw/x", {"p1": "abc"})
    assert not repeats_delivery(done, None, "cw/x", {"p1": "abc"})
    older = event_pb2.Event(type="initiative:delivered")  # recorded before commits were
    older.details.update({"branch": "cw/x", "projects": ["p1"]})
    assert not repeats_delivery(done, older, "cw/x", {"p1": "abc"})
