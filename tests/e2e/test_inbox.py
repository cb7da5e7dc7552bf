"""`cw inbox`: every kind of item that waits for a person, newest first, each with the command that
handles it; each one gone once handled, and `--follow` says so as it happens."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, project_pb2, proposal_pb2, task_pb2
from tests.e2e.cluster import Cluster, cluster, make_git_repo, wait_for

KINDS = {"question", "review", "blocked", "merge conflict", "proposal", "message", "sync failure"}


def _inbox(c: Cluster) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in c.cw_json("inbox")}


class Follower:
    """`cw inbox --follow --json` in the background, its lines collected as they come."""

    def __init__(self, c: Cluster) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli.main", "inbox", "--follow", "--json"],
            stdout=subprocess.PIPE,
            text=True,
            env=c.client_env(),
        )
        self.lines: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def saw(self, change: str, item_id: str) -> bool:
        return any(line["change"] == change and line["id"] == item_id for line in self.lines)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


@dataclass
class Waiting:
    """One thing of each kind that waits for a person."""

    initiative: initiative_pb2.Initiative
    question: agent_pb2.Agent
    telling: task_pb2.Task
    failing: task_pb2.Task
    merge: task_pb2.Task
    reviewed: phase_pb2.Phase
    proposal: proposal_pb2.Proposal
    ghost: project_pb2.Project


def _everything_waits(c: Cluster, tmp_path: Path) -> Waiting:
    initiative = c.initiative("Inbox", c.project())
    phase, clash = c.phase(initiative, "P"), c.phase(initiative, "Clash")
    asking = c.task(phase, "asks", questions=[{"id": "q1", "question": "tabs or spaces?"}])
    failing = c.task(phase, "fails", error_times=4)
    telling = c.task(phase, "tells", messages=[{"content": "the schema needs a decision", "requires_response": True}])
    release = tmp_path / "release-left"
    c.task(clash, "left", files={"shared.txt": "left\n"}, wait_for=str(release))
    right = c.task(clash, "right", files={"shared.txt": "right\n"})
    reviewed = c.phase(c.initiative("Reviewed", c.project("other")), "R")
    c.task(reviewed, "fine", files={"fine.txt": "f"})
    ghost = c.api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="ghost", url=str(tmp_path / "nowhere")))
    )
    c.approve(phase, clash, reviewed, c.phase(c.initiative("Unsynced", ghost), "U"))
    # Both clash tasks start from the same phase branch whatever the timing: left finishes only once
    # right runs (its branch made), so right's branch never holds left's work and their merges conflict.
    wait_for("the right clash task to run", lambda: c.all_spawned([right]))
    release.touch()
    question = wait_for("the question", lambda: [a for a in c.agents_of(asking.id) if a.pending_questions])[0]
    c.wait_task(failing.id, task_pb2.TASK_STATUS_BLOCKED)
    c.wait_phase(reviewed.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    merge = wait_for(
        "a blocked merge task",
        lambda: [
            t
            for t in c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=clash.id)).tasks
            if t.category == task_pb2.TASK_CATEGORY_MERGE and t.status == task_pb2.TASK_STATUS_BLOCKED
        ],
    )[0]
    wait_for("the agent waiting for a reply", lambda: [a for a in c.agents_of(telling.id) if a.pending_questions])
    wait_for(
        "the sync failure", lambda: c.api.projects.GetProject(project_pb2.GetProjectRequest(id=ghost.id)).sync_error
    )
    phase_type = proposal_pb2.PROPOSAL_TARGET_TYPE_PHASE
    proposed = proposal_pb2.Proposal(agent_id=question.id, initiative_id=initiative.id, target_type=phase_type)
    proposed.title = "a later phase"
    proposal = c.api.proposals.CreateProposal(proposal_pb2.CreateProposalRequest(proposal=proposed))
    return Waiting(initiative, question, telling, failing, merge, reviewed, proposal, ghost)


def _handle_everything(c: Cluster, tmp_path: Path, waiting: Waiting, message_id: str) -> None:
    c.cw("agent", "answer", waiting.question.name, "--answer", "q1=tabs")
    c.cw("task", "retry", waiting.failing.id)
    c.plan_for_initiative(waiting.initiative.id, resolve_conflicts=True)
    c.cw("task", "retry", waiting.merge.id)
    c.cw("phase", "merge", waiting.reviewed.id)
    c.cw("proposals", "dismiss", waiting.proposal.id)
    c.cw("reply", message_id, "keep it simple")
    c.cw("project", "edit", waiting.ghost.id, "--url", str(make_git_repo(tmp_path / "user" / "found")))


def test_the_inbox_lists_what_waits_and_forgets_what_is_handled(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        waiting = _everything_waits(c, tmp_path)
        items = c.cw_json("inbox")
        assert {item["kind"] for item in items} == KINDS
        assert [item["time"] for item in items] == sorted((item["time"] for item in items), reverse=True)
        by_id = {item["id"]: item for item in items}
        message = next(item for item in items if item["kind"] == "message")
        question = by_id[waiting.question.id]
        assert not any(item["kind"] == "question" and "schema" in item["title"] for item in items)  # a message
        assert question["command"] == f"cw agent answer {waiting.question.name}" and "tabs" in question["title"]
        assert by_id[waiting.failing.id]["command"] == f"cw task retry {waiting.failing.id}"
        assert "scripted error on attempt 4" in by_id[waiting.failing.id]["detail"]
        assert by_id[waiting.merge.id]["kind"] == "merge conflict" and "shared.txt" in by_id[waiting.merge.id]["detail"]
        assert f"cw phase merge {waiting.reviewed.id}" in by_id[waiting.reviewed.id]["command"]
        assert by_id[waiting.proposal.id]["kind"] == "proposal"
        assert message["command"].startswith(f"cw reply {message['id']}") and "decision" in message["title"]
        assert by_id[waiting.ghost.id]["command"] == f"cw project edit {waiting.ghost.id} --url URL"
        assert "agent" in c.cw("inbox").stdout  # and as text

        follower = Follower(c)
        try:
            wait_for("the follower's first listing", lambda: follower.saw("new", waiting.failing.id))
            _handle_everything(c, tmp_path, waiting, message["id"])
            for item_id, item in by_id.items():
                wait_for(f"{item['kind']} {item_id} to be handled", partial(follower.saw, "handled", item_id))
        finally:
            follower.close()
        assert not set(by_id) & set(_inbox(c)), _inbox(c)
        answered = c.api.agents.GetAgent(agent_pb2.GetAgentRequest(id=waiting.question.id))
        assert answered.status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
        c.wait_task(waiting.telling.id, task_pb2.TASK_STATUS_COMPLETED)  # the reply resumed it
        # Its only phase merged, "Reviewed" waits for one thing: delivering (it used to say nothing waits).
        delivered = waiting.reviewed.initiative_id
        ready = wait_for("the ready initiative", lambda: _inbox(c).get(delivered))
        assert ready["kind"] == "ready to deliver" and f"cw initiative deliver {delivered}" in ready["command"]
        c.cw("initiative", "deliver", delivered)
        assert delivered not in _inbox(c)
