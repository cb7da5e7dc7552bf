"""Planning with agents, end to end: both services as processes, scripted planning agents, the `cw`
CLI as a person uses it (issue 11, "Done means")."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, event_pb2, phase_pb2, proposal_pb2, task_pb2
from cw.store.v1 import chat_session_pb2 as chat
from tests.e2e.cluster import Cluster, cluster, script, wait_for


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("planning")) as running:
        yield running


def cw(c: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", *args],
        capture_output=True,
        text=True,
        env=c.client_env(),
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cw_json(c: Cluster, *args: str) -> Any:
    return json.loads(cw(c, "--json", *args).stdout)


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
    assert planning[:5] == ["task:dispatched", "proposal:created", "proposal:created", "proposal:created", "task:completed"]
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
