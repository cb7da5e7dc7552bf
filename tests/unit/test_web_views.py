"""A phase's diff as the web page shows it (clients/web/diffview.py): highlighted and escaped lines,
side-by-side pairs, binary files, pages of big files, comments under their lines; and the pure
readings of the pages (clients/web/views.py): accounts' states, agents' questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from clients.cli.views import usage_line
from clients.web import diffview, views
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, initiative_pb2, review_comment_pb2, task_pb2

UNIFIED = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1,3 +1,3 @@
 def f():
-    return '<old>'
+    return "<script>alert(1)</script>"
 \"\"\"doc
diff --git a/logo.png b/logo.png
new file mode 100644
Binary files /dev/null and b/logo.png differ
"""


def _diff(unified: str = UNIFIED) -> orch.GetPhaseDiffResponse:
    files = [
        orch.FileDiff(path="app.py", additions=1, deletions=1, change=orch.FILE_CHANGE_MODIFIED),
        orch.FileDiff(path="logo.png", change=orch.FILE_CHANGE_ADDED),
    ]
    return orch.GetPhaseDiffResponse(projects=[orch.ProjectDiff(project_name="app", files=files, unified_diff=unified)])


def test_lines_are_highlighted_and_escaped() -> None:
    app, logo = diffview.file_views(_diff())
    kinds = [(row.kind, row.old, row.new) for row in app.rows]
    assert kinds == [
        ("hunk", None, None),
        ("context", 1, 1),
        ("removed", 2, None),
        ("added", None, 2),
        ("context", 3, 3),
    ]
    added = app.rows[3].html
    assert "<script>" not in added and "&lt;script&gt;" in added and 'class="' in added
    assert "&lt;old&gt;" in app.rows[2].html
    assert (logo.binary, logo.rows, logo.change) == (True, [], "added")


def test_a_token_over_several_lines_keeps_each_line_apart() -> None:
    shown = diffview.highlight_lines("a.py", ['x = """one', "two <b>", 'three"""', "y = 1"])
    assert len(shown) == 4 and "&lt;b&gt;" in shown[1] and "<b>" not in shown[1]
    assert all("\n" not in line for line in shown)


def test_side_by_side_pairs_removed_with_added() -> None:
    app = diffview.file_views(_diff())[0]
    pairs = list(diffview.side_by_side(app.rows))
    assert pairs[0].hunk.startswith("@@")
    assert (pairs[1].left, pairs[1].right) == (app.rows[1], app.rows[1])
    assert (pairs[2].left, pairs[2].right) == (app.rows[2], app.rows[3])


def test_comments_sit_under_their_line_on_their_side() -> None:
    on_new = review_comment_pb2.ReviewComment(
        id="c1", file_path="app.py", line_number=2, line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED, body="why"
    )
    on_old = review_comment_pb2.ReviewComment(
        id="c2", file_path="app.py", line_number=2, line_type=review_comment_pb2.REVIEW_LINE_TYPE_REMOVED, body="gone"
    )
    app = diffview.file_views(_diff(), [on_new, on_old])[0]
    assert [c.id for c in app.rows[2].comments] == ["c2"]
    assert [c.id for c in app.rows[3].comments] == ["c1"]


def test_a_big_file_is_collapsed_and_paged() -> None:
    count = diffview.FILE_PAGE_LINES + 10
    body = "".join(f"+line {n}\n" for n in range(1, count + 1))
    unified = f"diff --git a/big.txt b/big.txt\n--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,{count} @@\n{body}"
    entry = orch.FileDiff(path="big.txt", additions=count, change=orch.FILE_CHANGE_ADDED)
    diff = orch.GetPhaseDiffResponse(
        projects=[orch.ProjectDiff(project_name="app", files=[entry], unified_diff=unified)]
    )
    (deferred,) = diffview.file_views(diff)
    assert deferred.deferred and deferred.rows == [] and deferred.total_rows == count + 1
    (first,) = diffview.file_views(diff, budget=count * 2)
    assert first.collapsed and first.pages == 2 and len(first.rows) == diffview.FILE_PAGE_LINES
    (second,) = diffview.file_views(diff, focus="big.txt", page=1)
    assert second.page == 1 and len(second.rows) == 11 and second.rows[-1].new == count


def test_files_past_the_row_budget_are_deferred_in_order() -> None:
    files = [orch.FileDiff(path=f"f{n}.txt", additions=3) for n in range(3)]
    unified = "".join(
        f"diff --git a/f{n}.txt b/f{n}.txt\n--- /dev/null\n+++ b/f{n}.txt\n@@ -0,0 +1,3 @@\n+a\n+b\n+c\n"
        for n in range(3)
    )
    diff = orch.GetPhaseDiffResponse(projects=[orch.ProjectDiff(project_name="p", files=files, unified_diff=unified)])
    shown = diffview.file_views(diff, budget=9)
    assert [f.deferred for f in shown] == [False, False, True]
    focused = diffview.file_views(diff, focus="f2.txt")
    assert [f.deferred for f in focused] == [True, True, False] and len(focused[2].rows) == 4


def test_an_account_says_why_it_rests_or_cannot_be_used() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = Timestamp()
    later.FromDatetime(now + timedelta(hours=1))
    resting = account_pb2.Account(has_credentials=True, is_exhausted=True, exhausted_until=later)
    assert views.account_state(resting, now).state == "resting"
    assert "rests until" in views.account_state(resting, now).why
    assert views.account_state(resting, now + timedelta(hours=2)).state == "ready"
    assert views.account_state(account_pb2.Account(has_credentials=False), now).state == "unusable"
    assert views.account_state(account_pb2.Account(has_credentials=True), now).why == ""
    refused = account_pb2.Account(id="a1", has_credentials=True, unusable_reason="Invalid API key")
    assert views.account_state(refused, now).state == views.AccountUse.UNUSABLE
    assert "refused its credentials: Invalid API key" in views.account_state(refused, now).why
    assert "cw account update a1" in views.account_state(refused, now).why


def test_usage_says_its_budget_and_when_it_is_spent() -> None:
    assert views.usage_view(None) == views.UsageView(usage_line(agent_pb2.Usage()), 0)
    used = agent_pb2.Usage(input_tokens=80, output_tokens=20, cost_usd=0.5)
    plain = views.usage_view(orch.UsageTotal(id="t", usage=used, agent_count=2, budget_tokens_used=100))
    assert (plain.agents, plain.budget, plain.spent) == (2, "", False)
    under = orch.UsageTotal(id="t", usage=used, budget_tokens_used=100, budget_tokens=101)
    assert views.usage_view(under).budget == "100 of 101 tokens" and not views.usage_view(under).spent
    at = orch.UsageTotal(id="t", usage=used, budget_tokens_used=100, budget_tokens=100)
    assert not views.usage_view(at).spent  # reached is not passed (the orchestrator's `spent`)
    past = orch.UsageTotal(id="t", usage=used, budget_tokens_used=101, budget_tokens=100)
    assert views.usage_view(past).spent
    by_cost = orch.UsageTotal(id="t", usage=used, budget_usd=0.25)
    assert views.usage_view(by_cost).spent and views.usage_view(by_cost).budget == "$0.5000 of $0.2500"


def test_the_boards_usage_is_set_against_its_initiatives_budget() -> None:
    initiative = initiative_pb2.Initiative(id="i", budget_tokens=100)
    none_yet = views.budget_total(initiative, None)
    assert (none_yet.budget_tokens, none_yet.budget_tokens_used, none_yet.agent_count) == (100, 0, 0)
    used = agent_pb2.Usage(input_tokens=60, output_tokens=30, cache_read_tokens=500, cache_write_tokens=11)
    total = views.budget_total(initiative, agent_pb2.UsageSum(usage=used, agent_count=3))
    assert total.budget_tokens_used == 101 and not total.HasField("budget_usd")  # cache reads left out
    assert views.usage_view(total).spent and views.usage_view(total).budget == "101 of 100 tokens"
    assert views.usage_view(views.budget_total(initiative_pb2.Initiative(id="i"), None)).budget == ""


def test_a_task_held_by_a_budget_says_which() -> None:
    blocked, pending = task_pb2.TASK_STATUS_BLOCKED, task_pb2.TASK_STATUS_PENDING
    stopped = task_pb2.Task(status=blocked, reason="the task's budget is spent: 460 tokens used of 300")
    assert views.budget_stop(stopped) == views.BudgetStop.TASK
    held = task_pb2.Task(status=pending, reason="the initiative's budget is spent: 9 tokens used of 1")
    assert views.budget_stop(held) == views.BudgetStop.INITIATIVE
    assert views.budget_stop(task_pb2.Task(status=blocked, reason="crashed")) == views.BudgetStop.NONE


def test_hostile_questions_json_is_no_question() -> None:
    for stored in ("not json", '{"id": "q"}', '[1, "two", {"question": "no id"}]'):
        assert views.questions_of(agent_pb2.Agent(pending_questions=stored)) == []
    asked = agent_pb2.Agent(pending_questions='[{"id": "q1", "question": "<b>why</b>?"}]')
    assert views.questions_of(asked) == [views.Question("q1", "<b>why</b>?")]


def test_a_board_row_escapes_what_an_agent_named() -> None:
    row = views.TaskRow('t"1', "<img src=x onerror=alert(1)>", "blocked", "<b>a</b>", "<script>x</script>")
    shown = str(row.html)
    assert "<img" not in shown and "<script>" not in shown and "<b>" not in shown
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and 'id="task-t&#34;1"' in shown
