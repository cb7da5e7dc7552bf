"""Merge conflicts resolved inside cw: a conflicting task -> phase or phase -> initiative merge
becomes a task of category MERGE whose agent starts with the conflict markers in its files; when it
is done the merge goes through. No git by hand, and nothing merged before is lost."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, cluster, wait_for

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW
MARKERS = ("<<<<<<<", ">>>>>>>")


def _merge_task(c: Cluster, phase_id: str, **source: str) -> task_pb2.Task:
    def found() -> task_pb2.Task | None:
        tasks = c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase_id), timeout=10).tasks
        return next((t for t in tasks if all(getattr(t, k) == v for k, v in source.items())), None)

    return wait_for(f"a merge task for {source}", found)


def _added(diff: orch.GetPhaseDiffResponse | orch.GetInitiativeDiffResponse) -> str:
    return "\n".join(line for p in diff.projects for line in p.unified_diff.splitlines() if line.startswith("+"))


def test_conflicts_are_resolved_by_merge_agents_and_nothing_merged_is_lost(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        initiative = c.initiative("Conflicts", c.project())
        phase, later = c.phase(initiative, "P"), c.phase(initiative, "Q")
        left = c.task(phase, "left", files={"shared.txt": "left version\n", "left.txt": "l"})
        right = c.task(phase, "right", files={"shared.txt": "right version\n", "right.txt": "r"})
        c.task(later, "other", files={"shared.txt": "later version\n", "later.txt": "q"})
        c.approve(phase, later)

        event = wait_for("a conflict", lambda: [e for e in c.events() if e.type == "phase:merge_conflict"])[0]
        assert json_format.MessageToDict(event.details)["files"] == ["shared.txt"]
        loser = event.task_id
        winner = left if loser == right.id else right
        merge = _merge_task(c, phase.id, merge_source_task_id=loser)
        assert merge.category == task_pb2.TASK_CATEGORY_MERGE and "shared.txt" in merge.description
        assert f"{winner.name}:" in merge.description  # the side already merged, with its summary
        # Its agent has no plan yet, so it leaves the markers: every attempt fails, then it waits for a person.
        blocked = c.wait_task(merge.id, task_pb2.TASK_STATUS_BLOCKED)
        assert "conflict markers remain in app/shared.txt" in blocked.reason and blocked.retry_count == 3
        waiting = c.get_task(loser)
        assert waiting.status == COMPLETED and not waiting.HasField("merge_time") and "merge task" in waiting.reason
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_BLOCKED)
        assert {f.path for p in c.diff(phase.id).projects for f in p.files} == {"shared.txt", f"{winner.name}.txt"}
        item = next(i for i in c.cw_json("inbox") if i["id"] == merge.id)
        assert item["kind"] == "merge conflict" and item["command"] == f"cw task retry {merge.id}"

        c.plan_for_initiative(initiative.id, resolve_conflicts=True, summary="kept both sides")
        c.cw("task", "retry", merge.id)
        c.wait_phase(phase.id, REVIEW)
        assert merge.id not in {i["id"] for i in c.cw_json("inbox")}
        assert c.get_task(loser).HasField("merge_time") and not c.get_task(loser).reason
        added = _added(c.diff(phase.id))
        assert "left version" in added and "right version" in added and not any(m in added for m in MARKERS)
        assert {"left.txt", "right.txt"} <= {f.path for p in c.diff(phase.id).projects for f in p.files}

        c.wait_phase(later.id, REVIEW)
        assert c.orch.MergePhase(orch.MergePhaseRequest(phase_id=phase.id), timeout=30).status == (
            phase_pb2.PHASE_STATUS_COMPLETED
        )
        sent_back = c.orch.MergePhase(orch.MergePhaseRequest(phase_id=later.id), timeout=30)
        assert sent_back.status == phase_pb2.PHASE_STATUS_IN_PROGRESS and "shared.txt" in sent_back.reason
        resolver = _merge_task(c, later.id, merge_source_phase_id=later.id)
        assert "Phase P:" in resolver.description  # the other side: what the initiative branch holds
        c.wait_phase(later.id, phase_pb2.PHASE_STATUS_COMPLETED)
        everything = c.orch.GetInitiativeDiff(orch.GetInitiativeDiffRequest(initiative_id=initiative.id), timeout=30)
        added = _added(everything)
        for line in ("left version", "right version", "later version"):
            assert line in added
        assert not any(m in added for m in MARKERS)
        assert {"left.txt", "right.txt", "later.txt"} <= {f.path for p in everything.projects for f in p.files}
        c.assert_invariants()
