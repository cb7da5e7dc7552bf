"""The review loop through the CLI: a review agent comments on a phase's diff, a person comments on
lines of it, requests changes, and the revision agent's work comes back for review with the
comments it addressed resolved and the others still open."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import phase_pb2, task_pb2
from tests.e2e.cluster import cluster, script

REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW


def test_request_changes_cycle(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        initiative = c.initiative("Reviewed", c.project())
        phase = c.phase(initiative, "P")
        work = c.task(phase, "work", files={"a.txt": "one\ntwo\n", "b.txt": "bee\n"})
        remark = {"file": "a.txt", "line": 2, "body": "two what?"}
        reviewer = c.cw_json(
            "task", "add", phase.id, "review it", "--category", "review", "--after", work.id,
            "--description", script(review_comments=[
                remark,
                {"file": "a.txt", "line": 0, "body": "no line"},
                # Checked as a person's comment is: outside the worktree, outside the file.
                {"file": "../../../etc/passwd", "line": 1, "body": "outside"},
                {"file": "a.txt", "line": 999999, "body": "far below"},
            ]),
        )  # fmt: skip
        c.approve(phase)
        c.wait_phase(phase.id, REVIEW)
        by_agent = c.cw_json("review", "list", phase.id)
        agent_name = c.agents_of(reviewer["id"])[0].name
        assert [(x["filePath"], x["lineNumber"], x["lineType"], x["author"]) for x in by_agent] == [
            ("a.txt", 2, "REVIEW_LINE_TYPE_ADDED", agent_name)
        ]
        reviewed = c.get_task(reviewer["id"])
        assert reviewed.status == task_pb2.TASK_STATUS_COMPLETED and reviewed.HasField("merge_time")
        files = {f.path for p in c.diff(phase.id).projects for f in p.files}
        assert files == {"a.txt", "b.txt"}  # the review agent's branch is not merged

        first = c.cw_json("review", "comment", phase.id, "a.txt:1", "say why one")
        second = c.cw_json("review", "comment", phase.id, "b.txt:1", "bee is misspelt")
        assert (first["lineType"], second["lineType"]) == ("REVIEW_LINE_TYPE_ADDED", "REVIEW_LINE_TYPE_ADDED")
        outside = c.cw("review", "comment", phase.id, "a.txt:9", "not in the diff", check=False)
        assert outside.returncode == 1 and "not in the phase's diff" in outside.stderr
        c.cw("review", "resolve", by_agent[0]["id"])
        shown = c.cw("phase", "diff", phase.id).stdout.splitlines()
        assert shown[shown.index("+one") + 1] == f"  >> [{first['id']}] you: say why one"
        assert shown[shown.index("+bee") + 1] == f"  >> [{second['id']}] you: bee is misspelt"
        assert "two what?" not in "\n".join(shown)  # resolved: not shown

        # The revision waits for `release`, so the phase is surely still IN_PROGRESS when asked again.
        release = tmp_path / "release-revision"
        c.plan_for_initiative(
            initiative.id,
            files={"a.txt": "one, because\ntwo\n"},
            resolved_comments=[first["id"]],
            wait_for=str(release),
        )
        sent = c.cw_json("review", "request-changes", phase.id)
        assert sent["status"] == "PHASE_STATUS_IN_PROGRESS"
        revision = next(
            t for t in c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase.id)).tasks if t.review_comment_ids
        )
        assert set(revision.review_comment_ids) == {first["id"], second["id"]}
        for needed in (first["id"], "a.txt:1", "say why one", "+one", second["id"], "bee is misspelt", "+bee"):
            assert needed in revision.description
        again = c.cw("review", "request-changes", phase.id, check=False)
        assert again.returncode == 1 and "not PENDING_REVIEW" in again.stderr
        release.touch()

        c.wait_phase(phase.id, REVIEW)
        state = {x["id"]: x.get("resolved", False) for x in c.cw_json("review", "list", phase.id, "--all")}
        assert state == {by_agent[0]["id"]: True, first["id"]: True, second["id"]: False}
        assert [x["id"] for x in c.cw_json("review", "list", phase.id)] == [second["id"]]
        assert c.get_task(revision.id).resolved_comment_ids == [first["id"]]
        added = "\n".join(p.unified_diff for p in c.diff(phase.id).projects)
        assert "+one, because" in added and "+bee" in added
        assert any(e.type == "phase:changes_requested" and e.phase_id == phase.id for e in c.events())
        c.assert_invariants()


def test_a_comment_on_a_file_named_like_its_project_shows_under_its_line(tmp_path: Path) -> None:
    """Before, in project `inflection`, a comment on `inflection/__init__.py` was stored and never
    shown (the CLI took `inflection/` for the project's name); a review agent's comment the same."""
    with cluster(tmp_path) as c:
        project = c.project("inflection")
        phase = c.phase(c.initiative("Named", project), "P")
        work = c.task(phase, "work", files={"inflection/__init__.py": "one\ntwo\n"})
        remark = {"project": "inflection", "file": "inflection/__init__.py", "line": 2, "body": "two what?"}
        c.cw(
            "task", "add", phase.id, "review it", "--category", "review", "--after", work.id,
            "--description", script(review_comments=[remark]),
        )  # fmt: skip
        c.approve(phase)
        c.wait_phase(phase.id, REVIEW)
        mine = c.cw_json("review", "comment", phase.id, "inflection/__init__.py:1", "say why one")
        assert (mine["projectId"], mine["filePath"]) == (project.id, "inflection/__init__.py")
        by_agent = next(x for x in c.cw_json("review", "list", phase.id) if x["id"] != mine["id"])
        assert (by_agent["projectId"], by_agent["filePath"]) == (project.id, "inflection/__init__.py")
        shown = c.cw("phase", "diff", phase.id).stdout.splitlines()
        assert shown[shown.index("+one") + 1] == f"  >> [{mine['id']}] you: say why one"
        assert shown[shown.index("+two") + 1].endswith("two what?")
        assert "inflection" in c.cw("review", "list", phase.id).stdout
        c.plan_for_initiative(phase.initiative_id, files={"inflection/__init__.py": "one, because\ntwo\n"})
        c.cw("review", "request-changes", phase.id)
        revision = next(
            t for t in c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase.id)).tasks if t.review_comment_ids
        )
        assert "on inflection/__init__.py:1 (added) in project inflection" in revision.description
        assert "+one" in revision.description  # the hunk, found in its project's diff
