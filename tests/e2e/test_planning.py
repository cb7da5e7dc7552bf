"""Planning with agents, end to end: both services as processes, scripted planning agents, the `cw`
CLI as a person uses it (README.md, "Planning with agents")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, event_pb2, page_pb2, phase_pb2, proposal_pb2, task_pb2
from cw.store.v1 import chat_session_pb2 as chat
from tests.e2e.cluster import Cluster, cluster, cw, cw_json, script, wait_for


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("planning")) as running:
        yield running


def types_after(c: Cluster, sequence: int, wanted: tuple[str, ...]) -> list[str]:
    return [event.type for event in c.events(sequence) if event.type.startswith(wanted)]


def head(c: Cluster) -> int:
    return c.api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence


def phase_edges(c: Cluster, initiative_id: str) -> dict[str, set[str]]:
    phases = c.api.phases.ListPhases(phase_pb2.ListPhasesRequest(initiative_id=initiative_id)).phases
    return {
        phase.name: {
            other.name
            for other in c.api.phases.ListPhaseDependencies(
                phase_pb2.ListPhaseDependenciesRequest(phase_id=phase.id)
            ).phases
        }
        for phase in phases
    }


PHASES = [
    {"key": "p1", "target_type": "phase", "title": "Schema", "summary": "tables", "content": "Users, sessions."},
    {"key": "p2", "target_type": "phase", "title": "Server", "depends_on": ["p1"]},
    {"key": "p3", "target_type": "phase", "title": "Client", "depends_on": ["p1", "p2"]},
]


def test_plan_proposes_phases_accepted_as_one_change_set_and_reverted(services: Cluster, tmp_path: Path) -> None:
    c = services
    initiative = c.initiative("Sign-in", c.project("signin"))
    (root,) = cw_json(c, "page", "tree", initiative.id)
    idea = tmp_path / "idea.md"
    idea.write_text("# Sign-in\nPeople sign in with a magic link.\n")
    cw(c, "page", "edit", root["id"], "--file", str(idea))
    before_plan = head(c)

    planned = cw_json(c, "plan", initiative.id, "--instructions", script(summary="three phases", proposals=PHASES))
    assert planned["task"]["status"] == "TASK_STATUS_COMPLETED" and planned["task"]["summary"] == "three phases"
    assert [p["title"] for p in planned["proposals"]] == ["Schema", "Server", "Client"]
    assert planned["proposals"][2]["dependsOn"] == ["p1", "p2"]
    (agent,) = c.agents_of(planned["task"]["id"])
    assert agent.mode == agent_pb2.AGENT_MODE_PLAN
    prompt = (c.root / "workspace" / "agents" / agent.id / "prompt.md").read_text()
    assert "People sign in with a magic link." in prompt and "mode plan" in prompt
    shown = cw(c, "proposals", "list", initiative.id).stdout
    assert "Client" in shown and "after: Schema, Server" in shown
    assert phase_edges(c, initiative.id) == {}  # nothing exists until accepted

    before_accept = head(c)
    accepted = cw_json(c, "proposals", "accept", "--initiative", initiative.id)
    assert phase_edges(c, initiative.id) == {"Schema": set(), "Server": {"Schema"}, "Client": {"Schema", "Server"}}
    change_set = c.api.chat_sessions.GetChangeSet(chat.GetChangeSetRequest(id=accepted["changeSetId"]))
    assert len(change_set.entries) == 6  # three phases, three edges: one change set
    assert all(p["status"] == "PROPOSAL_STATUS_ACCEPTED" for p in accepted["proposals"])

    before_revert = head(c)
    cw(c, "proposals", "revert", accepted["changeSetId"])
    assert phase_edges(c, initiative.id) == {}

    planning = types_after(c, before_plan, ("proposal:", "task:completed", "task:dispatched"))
    assert planning[:5] == [
        "task:dispatched",
        "proposal:created",
        "proposal:created",
        "proposal:created",
        "task:completed",
    ]
    accepting = types_after(c, before_accept, ("phase", "change_set", "proposal"))[:10]
    assert accepting == [
        *["phase:created"] * 3,
        *["phase_dependency:created"] * 3,
        "change_set:created",
        *["proposal:updated"] * 3,
    ]
    reverting = types_after(c, before_revert, ("phase", "change_set", "proposal"))
    assert reverting[:6] == [*["phase_dependency:deleted"] * 3, *["phase:deleted"] * 3]
    assert reverting[6:] == ["change_set:updated", *["proposal:updated"] * 3]


def _run_planning_task(
    c: Cluster, initiative_id: str, category: str, target_id: str = "", **plan: Any
) -> task_pb2.Task:
    """A planning task made and dispatched as the CLI's shortcuts do, its agent following `plan`."""
    task = c.api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(
            task=task_pb2.Task(
                initiative_id=initiative_id,
                name=f"{category} run",
                description=script(**plan),
                category=task_pb2.TaskCategory.Value(f"TASK_CATEGORY_{category.upper()}"),
                target_id=target_id,
            )
        )
    )
    return c.orch.DispatchTask(orchestrator_pb2.DispatchTaskRequest(task_id=task.id), timeout=10)


def _proposals(c: Cluster, initiative_id: str = "", agent_id: str = "") -> list[proposal_pb2.Proposal]:
    request = proposal_pb2.ListProposalsRequest(page_size=1000, initiative_id=initiative_id, agent_id=agent_id)
    return list(c.api.proposals.ListProposals(request).proposals)


def test_detail_proposes_dependent_tasks_that_run_in_order_into_the_phase_diff(services: Cluster) -> None:
    c = services
    initiative = c.initiative("Detail me", c.project("detail"))
    phase = c.phase(initiative, "Build")
    steps: list[dict[str, Any]] = [
        {"key": "t1", "target_type": "task", "title": "First", "content": script(files={"first.txt": "1"})},
        {"key": "t2", "target_type": "task", "title": "Second", "depends_on": ["t1"], "priority": "high"},
        {"key": "t3", "target_type": "task", "title": "Third", "depends_on": ["t2"], "category": "execute"},
    ]
    steps[1]["content"] = script(files={"second.txt": "2"})
    steps[2]["content"] = script(files={"third.txt": "3"})
    planned = json.loads(cw(c, "--json", "phase", "detail", phase.id, "--instructions", script(proposals=steps)).stdout)
    assert [p["parent"] for p in planned["proposals"]] == [phase.id] * 3  # the detailed phase by default
    cw(c, "proposals", "accept", *[p["id"] for p in planned["proposals"]])
    tasks = {task.name: task for task in c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase.id)).tasks}
    assert set(tasks) == {"First", "Second", "Third"} and tasks["Second"].priority == task_pb2.TASK_PRIORITY_HIGH
    start = head(c)
    cw(c, "phase", "approve", phase.id)
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    order = [
        (event.type, event.task_id)
        for event in c.events(start)
        if event.type in ("task:dispatched", "task:merged") and event.task_id in {t.id for t in tasks.values()}
    ]
    ids = [tasks[name].id for name in ("First", "Second", "Third")]
    assert order == [(kind, task_id) for task_id in ids for kind in ("task:dispatched", "task:merged")]
    files = {f.path for project in c.diff(phase.id).projects for f in project.files}
    assert files == {"first.txt", "second.txt", "third.txt"}


def test_partial_accept_dismiss_stale_cycle_and_double_accept(services: Cluster, tmp_path: Path) -> None:
    c = services
    initiative = c.initiative("Choose", c.project("choose"))
    root = c.api.pages.GetOrCreateRootPage(page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative.id))
    proposed = [
        {"key": "a", "target_type": "phase", "title": "A"},
        {"key": "b", "target_type": "phase", "title": "B", "depends_on": ["a"]},
        {"key": "c", "target_type": "phase", "title": "C", "depends_on": ["d"]},
        {"key": "d", "target_type": "phase", "title": "D", "depends_on": ["c"]},
        {"target_type": "page", "target_id": root.id, "content": "# Decided\n"},
    ]
    task = _run_planning_task(c, initiative.id, "plan", proposals=proposed)
    c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
    a, b, cyc_c, cyc_d, page_edit = sorted(_proposals(c, initiative_id=initiative.id), key=lambda p: p.sort_order)

    first = cw_json(c, "proposals", "accept", a.id)
    assert set(phase_edges(c, initiative.id)) == {"A"}
    assert cw_json(c, "proposals", "dismiss", b.id)["proposals"][0]["status"] == "PROPOSAL_STATUS_DISMISSED"

    cycle = cw(c, "proposals", "accept", cyc_c.id, cyc_d.id, check=False)
    assert cycle.returncode == 1 and "cycle" in cycle.stderr
    assert set(phase_edges(c, initiative.id)) == {"A"}  # refused whole: neither C nor D

    (tmp_path / "mine.md").write_text("# Mine\n")
    cw(c, "page", "edit", root.id, "--file", str(tmp_path / "mine.md"))
    stale = cw(c, "proposals", "accept", page_edit.id, check=False)
    assert stale.returncode == 1 and page_edit.id in stale.stderr and "changed since" in stale.stderr

    before = head(c)
    again = cw_json(c, "proposals", "accept", a.id)
    assert again["changeSetId"] == first["changeSetId"] and head(c) == before
    assert set(phase_edges(c, initiative.id)) == {"A"}


def _rename(title: str) -> str:
    """A chat message whose scripted agent renames the task it is about."""
    edit = {"target_type": "task", "target_id": "$CW_TARGET_ID", "title": title, "content": f"Now: {title}."}
    return f"Please call it {title}.\n{script(summary=f'renamed to {title}', proposals=[edit])}"


def test_chat_two_messages_each_reply_linked_to_its_changes_and_undo_reverts_the_second(services: Cluster) -> None:
    c = services
    phase = c.phase(c.initiative("Chat", c.project("chat")), "Polish")
    target = c.task(phase, "Original")
    first = cw_json(c, "chat", "task", target.id, _rename("Second name"))
    assert first["reply"]["content"] == "renamed to Second name" and first["changeSet"]["entries"]
    second = cw_json(c, "chat", "task", target.id, _rename("Third name"))
    assert second["reply"]["changeSetId"] != first["reply"]["changeSetId"]
    assert c.get_task(target.id).name == "Third name"

    session = c.api.chat_sessions.GetActiveChatSession(
        chat.GetActiveChatSessionRequest(target_type=chat.CHAT_TARGET_TYPE_TASK, target_id=target.id)
    )
    (agent,) = c.agents_of(session.task_id)  # one agent, its CLI session resumed for the second message
    assert agent.mode == agent_pb2.AGENT_MODE_REFINE and session.agent_id == agent.id
    assert [e.type for e in c.events() if e.agent_id == agent.id and e.type in ("agent:spawned", "agent:resumed")] == [
        "agent:spawned",
        "agent:resumed",
    ]
    shown = cw(c, "chat", "show", "task", target.id).stdout
    assert "renamed to Second name" in shown and "renamed to Third name" in shown

    cw(c, "chat", "undo", "task", target.id)
    assert c.get_task(target.id).name == "Second name"  # only the second reply's changes are undone
    states = {
        change_set.id: change_set.status
        for change_set in c.api.chat_sessions.ListChangeSets(
            chat.ListChangeSetsRequest(chat_session_id=session.id)
        ).change_sets
    }
    assert states == {
        first["reply"]["changeSetId"]: chat.CHANGE_SET_STATUS_APPLIED,
        second["reply"]["changeSetId"]: chat.CHANGE_SET_STATUS_REVERTED,
    }
    # What was undone does not come back to the inbox as pending.
    pending = {item["id"] for item in cw_json(c, "inbox") if item["kind"] == "proposal"}
    undone = c.api.proposals.ListProposals(proposal_pb2.ListProposalsRequest(initiative_id=phase.initiative_id))
    assert undone.proposals and not pending & {p.id for p in undone.proposals}


def test_proposals_are_stored_once_across_orchestrator_kills(tmp_path: Path) -> None:
    """SIGKILLed while the plan agent runs, then again right after its proposals are stored and
    before its run is settled: each time, after a restart, they are there exactly once."""
    with cluster(tmp_path) as c:
        initiative = c.initiative("Restart", c.project())
        release = tmp_path / "release"
        task = _run_planning_task(c, initiative.id, "plan", wait_for=str(release), proposals=PHASES)
        wait_for("the plan agent to run", lambda: c.all_spawned([task]))
        assert c.orchestrator is not None
        c.orchestrator.kill()
        release.touch()
        wait_for("the agent to finish while the orchestrator is down", lambda: c.exited_agents() == 1)
        c.start_orchestrator()
        c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        assert sorted(p.title for p in _proposals(c, initiative_id=initiative.id)) == ["Client", "Schema", "Server"]

        c.orchestrator.kill()
        c.start_orchestrator(faults="after-proposals-stored")
        again = _run_planning_task(c, initiative.id, "plan", proposals=PHASES[:1])
        dying = c.orchestrator
        wait_for("the orchestrator to die once the proposals are stored", lambda: dying.process.poll() is not None)
        c.start_orchestrator()
        c.wait_task(again.id, task_pb2.TASK_STATUS_COMPLETED)
        (agent,) = c.agents_of(again.id)
        assert [p.title for p in _proposals(c, agent_id=agent.id)] == ["Schema"]
        assert len(_proposals(c, initiative_id=initiative.id)) == 4
        c.assert_invariants()


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"raw_signal": '{"status": "done", "proposals": [}'}, "unreadable signal file: not JSON"),
        ({"proposals": [{"target_type": "milestone", "title": "x"}]}, "proposals[0].target_type: unknown target type"),
        (
            {"proposals": [{"key": "t1", "target_type": "task", "phase": "p9", "title": "x"}]},
            "proposals[0].phase: unknown key or id 'p9'",
        ),
        ({"proposals": [{"target_type": "phase", "title": "x" * 300}]}, "proposals[0].title"),
    ],
    ids=["wrong-json", "unknown-target-type", "unknown-key", "over-a-limit"],
)
def test_a_bad_proposal_file_fails_the_attempt_with_its_reason(
    services: Cluster, plan: dict[str, Any], reason: str
) -> None:
    c = services
    initiative = c.initiative(f"Bad {reason[:20]}", c.project(f"bad{abs(hash(reason)) % 10_000}"))
    task = _run_planning_task(c, initiative.id, "plan", **plan)
    retried = wait_for(
        "the failed attempt",
        lambda: next((e for e in c.events() if e.task_id == task.id and e.type == "task:retried"), None),
    )
    error = str(retried.details["error"])
    assert reason in error and (error.startswith("bad proposal file: ") or "signal" in reason), error
    assert _proposals(c, initiative_id=initiative.id) == []
    # The orchestrator keeps serving: a good plan of the same initiative goes through.
    good = _run_planning_task(c, initiative.id, "plan", proposals=PHASES[:1])
    c.wait_task(good.id, task_pb2.TASK_STATUS_COMPLETED)


def test_discuss_asks_first_then_proposes_the_page_edit_recording_the_answer(services: Cluster) -> None:
    c = services
    initiative = c.initiative("Discuss", c.project("discuss"))
    root = c.api.pages.GetOrCreateRootPage(page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative.id))
    decided = {"target_type": "page", "target_id": root.id, "content": "# Decided\nEmail links, no passwords.\n"}
    questions = [{"id": "q1", "question": "Passwords or email links?"}]
    asked = cw(c, "discuss", initiative.id, "--instructions", script(questions=questions, proposals=[decided])).stdout
    assert "Passwords or email links?" in asked and "cw agent answer" in asked
    (agent,) = c.api.agents.ListAgents(
        agent_pb2.ListAgentsRequest(status=agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT, initiative_id=initiative.id)
    ).agents
    assert agent.mode == agent_pb2.AGENT_MODE_DISCUSS
    cw(c, "agent", "answer", agent.name, "--answer", "q1=Email links")
    c.wait_task(agent.task_id, task_pb2.TASK_STATUS_COMPLETED)
    prompt = (c.root / "workspace" / "agents" / agent.id / "prompt.md").read_text()
    assert "- q1: Email links" in prompt and "Talk the initiative through" in prompt
    shown = cw(c, "proposals", "list", initiative.id).stdout
    assert f"edit of page {root.title}" in shown and "+Email links, no passwords." in shown


def test_a_shortcut_tells_each_failed_attempt_as_it_happens(services: Cluster) -> None:
    """Before, `cw page refine` with a bad report waited minutes in silence while its attempts
    failed, then showed only the last error."""
    c = services
    initiative = c.initiative("Retries", c.project("retries"))
    plan = script(crash_times=2, summary="third time lucky", proposals=PHASES[:1])
    ran = cw(c, "plan", initiative.id, "--instructions", plan)
    told = [line for line in ran.stderr.splitlines() if line.startswith("cw: attempt")]
    assert [line.split(" (agent ")[0] for line in told] == ["cw: attempt 1", "cw: attempt 2"], ran.stderr
    assert all("failed: exited with 3" in line for line in told)
    assert "third time lucky" in ran.stdout and "attempt" not in ran.stdout
    # A report that is no report: every attempt told, the last one as the last, then the error.
    refused = cw(c, "plan", initiative.id, "--instructions", script(raw_signal="not json"), check=False)
    told = [line for line in refused.stderr.splitlines() if line.startswith("cw: attempt")]
    assert refused.returncode == 1 and len(told) >= 2 and told[-1].endswith("no attempt left"), refused.stderr
    assert refused.stderr.index("no attempt left") < refused.stderr.index("the planning run failed")
