"""An editable plan and delivery, through the CLI: a create with a bad dependency creates nothing,
edits and deletes wait while an agent works, a merged phase takes a task only when reopened; and
`deliver` pushes the initiative branch into the user's own (non-bare) repository as a branch,
leaving `main` and the working tree as they were."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cw.store.v1 import initiative_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import cluster, script, wait_for

REVIEW = phase_pb2.PHASE_STATUS_PENDING_REVIEW


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_creates_are_whole_and_edits_wait_for_the_agent(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        c.project()
        initiative = c.cw_json("initiative", "create", "Plan", "--project", "app")
        phase = c.cw_json("phase", "add", initiative["id"], "P")
        working = c.cw_json(
            "task", "add", phase["id"], "work", "--description", script(files={"w.txt": "w"}, wait_for=str(release))
        )
        bad = c.cw(
            "task", "add", phase["id"], "later", "--after", working["id"], "--after", "no-such-task", check=False
        )
        assert bad.returncode == 1 and "depends_on_task_ids[1]" in bad.stderr
        assert [t["name"] for t in c.cw_json("task", "list", "--phase", phase["id"])] == ["work"]
        bad_phase = c.cw("phase", "add", initiative["id"], "Q", "--after", "no-such-phase", check=False)
        assert bad_phase.returncode == 1 and [
            p["name"] for p in c.cw_json("initiative", "show", initiative["id"])["phases"]
        ] == ["P"]

        c.cw("phase", "approve", phase["id"])
        wait_for("the agent at work", lambda: c.agents_of(working["id"]) and c.agents_of(working["id"])[0].pid)
        refusals = [
            ("task", "edit", working["id"], "--name", "renamed"),
            ("task", "delete", working["id"]),
            ("phase", "edit", phase["id"], "--name", "renamed"),
            ("phase", "delete", phase["id"]),
            ("project", "edit", "app", "--default-branch", "trunk"),
            ("project", "remove", "app"),
        ]
        for refused in refusals:
            result = c.cw(*refused, check=False)
            assert result.returncode == 1 and "(failed_precondition)" in result.stderr, refused
            assert "works on it" in result.stderr
        assert c.get_task(working["id"]).name == "work"

        release.touch()
        c.wait_phase(phase["id"], REVIEW)
        assert (
            c.cw_json("task", "edit", working["id"], "--name", "renamed", "--priority", "high")["priority"]
            == "TASK_PRIORITY_HIGH"
        )
        c.cw("phase", "merge", phase["id"])
        late = c.cw("task", "add", phase["id"], "late", check=False)
        assert late.returncode == 1 and "COMPLETED" in late.stderr and "--reopen" in late.stderr
        reopened = c.cw_json(
            "task", "add", phase["id"], "late", "--reopen", "--description", script(files={"late.txt": "l"})
        )
        c.wait_task(reopened["id"], task_pb2.TASK_STATUS_COMPLETED)
        c.wait_phase(phase["id"], REVIEW)
        assert {f.path for p in c.diff(phase["id"]).projects for f in p.files} == {"late.txt"}
        other = c.cw_json("phase", "add", initiative["id"], "Other")
        c.cw("task", "move", reopened["id"], other["id"])
        c.cw("phase", "delete", other["id"])
        assert [t["name"] for t in c.cw_json("task", "list", "--phase", phase["id"])] == ["renamed"]


def test_deliver_pushes_a_branch_and_leaves_the_checkout_alone(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        project = c.project()
        user = Path(project.url)
        (user / "README.md").write_text("# edited, not committed\n")
        (user / "notes.txt").write_text("untracked\n")
        before = (_git(user, "rev-parse", "refs/heads/main"), _git(user, "status", "--porcelain"))
        initiative = c.initiative("Ship it", project)
        phase = c.phase(initiative, "P")
        c.task(phase, "t", files={"feature.txt": "shipped"})
        c.approve(phase)
        c.wait_phase(phase.id, REVIEW)
        early = c.cw("initiative", "deliver", initiative.id, check=False)
        assert early.returncode == 1 and "not merged yet" in early.stderr
        c.cw("phase", "merge", phase.id)
        diff = c.cw_json("initiative", "diff", initiative.id)
        assert [f["path"] for f in diff["projects"][0]["files"]] == ["feature.txt"]
        delivered = c.cw_json("initiative", "deliver", initiative.id)
        assert delivered["status"] == "INITIATIVE_STATUS_COMPLETED"
        branch = initiative.branch
        assert _git(user, "show", f"refs/heads/{branch}:feature.txt") == "shipped"
        assert (_git(user, "rev-parse", "refs/heads/main"), _git(user, "status", "--porcelain")) == before
        assert _git(user, "symbolic-ref", "HEAD") == "refs/heads/main" and not (user / "feature.txt").exists()
        assert (user / "README.md").read_text() == "# edited, not committed\n"
        # The retry of a client whose answer was lost: the orchestrator killed, the delivery asked again.
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator()
        again = c.cw_json("initiative", "deliver", initiative.id)
        assert again["status"] == "INITIATIVE_STATUS_COMPLETED"
        deliveries = [e for e in c.events() if e.type == "initiative:delivered" and e.initiative_id == initiative.id]
        assert len(deliveries) == 1, deliveries  # it used to record a second one

        _git(user, "checkout", "-q", branch)
        refused = c.cw("initiative", "deliver", initiative.id, check=False)
        assert refused.returncode == 1 and "checked out" in refused.stderr
        stored = c.api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=initiative.id))
        assert stored.status == initiative_pb2.INITIATIVE_STATUS_COMPLETED
