"""The attack on the rule of at most one live agent per task across the cluster that an
orchestrator cannot fence itself against: it is stopped (SIGSTOP, as a frozen machine would be)
longer than its lease's ttl, while its agents run on. Their shims end them by the deadline the
orchestrator last wrote in its workspace (agents/shim.py, the fence), before another orchestrator
may take the run over; the task then completes there. Once the stopped orchestrator is let go
(SIGCONT) it takes its lease again and starts no duplicate."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from google.protobuf import json_format

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents.supervisor import AgentFiles
from tests.e2e.cluster import wait_for
from tests.e2e.fleet import LIVE, Fleet, Sampler, fleet

TTL = 3.0


def test_a_stopped_orchestrators_agent_ends_before_its_run_is_taken_over(tmp_path: Path) -> None:
    c = fleet(tmp_path, max_agents=2, lease_ttl=TTL)
    gate = tmp_path / "gate"
    try:
        phase, task = _two_members_and_a_held_task(c, "Stopped", gate)
        with Sampler(c) as sampler:
            c.approve(phase)
            first = wait_for("the task's agent running", lambda: _running(c, task.id), 60)
            victim, other = first.orchestrator, ({"east", "west"} - {first.orchestrator}).pop()
            c.members[victim].process.send_signal(signal.SIGSTOP)
            try:
                wait_for("the stopped one's agent to end", lambda: not c.live_processes(victim), 2 * TTL)
                taken = wait_for("the run taken over", lambda: _taken_over(c, first.id), 4 * TTL)
                second = wait_for("a new agent on the other", lambda: _running(c, task.id, other), 60)
                gate.write_text("open\n")
                c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=60)
            finally:
                c.members[victim].process.send_signal(signal.SIGCONT)
            wait_for("the stopped one to take its lease again", lambda: _rejoined(c, victim), 30)
        assert not sampler.doubles, sampler.doubles
        assert sampler.most_processes == 1
        assert taken["by"] == other and second.id != first.id
        exited = json.loads((AgentFiles.of(c.workspace(victim), first.id).control / "exit.json").read_text())
        assert exited["fenced"] is True
        assert sorted(a.id for a in c.agents_of(task.id)) == sorted([first.id, second.id])
        assert not c.live_processes(victim)
    finally:
        c.close()


def _two_members_and_a_held_task(c: Fleet, name: str, gate: Path) -> tuple[phase_pb2.Phase, task_pb2.Task]:
    """The store, orchestrators east and west that have seen each other, and a phase whose one task
    holds until `gate` exists."""
    c.start_store()
    c.start_member("east")
    c.start_member("west")
    wait_for("each orchestrator to see the other", lambda: _both_fenced(c), 30)
    phase = c.phase(c.initiative(name, c.project()), "held")
    return phase, c.task(phase, "t", files={"t.txt": "x\n"}, wait_for=str(gate))


def _both_fenced(c: Fleet) -> bool:
    """Both workspaces' fence files set a deadline: each orchestrator has seen the other."""
    return all(_deadline(c.workspace(name)) is not None for name in ("east", "west"))


def _deadline(workspace: Path) -> float | None:
    try:
        return json.loads((workspace / "fence.json").read_text()).get("deadline")
    except (OSError, ValueError):
        return None


def _running(c: Fleet, task_id: str, on: str = "") -> agent_pb2.Agent | None:
    """The task's live agent (on `on`, when named) once its process runs."""
    for agent in c.live_agents():
        mine = agent.task_id == task_id and agent.pid and (not on or agent.orchestrator == on)
        if mine and agent.id in c.live_processes(agent.orchestrator):
            return agent
    return None


def _taken_over(c: Fleet, agent_id: str) -> dict[str, str] | None:
    for event in c.events_of("agent:taken_over"):
        if event.agent_id == agent_id:
            return {key: str(value) for key, value in json_format.MessageToDict(event.details).items()}
    return None


def _rejoined(c: Fleet, name: str) -> bool:
    joined = [json_format.MessageToDict(event.details) for event in c.events_of("orchestrator:joined")]
    return any(details["name"] == name and details.get("lapsed") for details in joined)


def test_an_orchestrator_back_before_its_lease_lapsed_settles_its_fenced_run(tmp_path: Path) -> None:
    """Killed right after a renewal and restarted once its agent's shim fenced it (three quarters of
    the ttl later), but before its lease lapsed: nobody took the run over, and the orchestrator
    settles it itself, as a crashed attempt that says why; the task is retried and completes."""
    ttl = 20.0
    c = fleet(tmp_path, max_agents=2, lease_ttl=ttl)
    gate = tmp_path / "gate"
    try:
        phase, task = _two_members_and_a_held_task(c, "Killed", gate)
        c.approve(phase)
        first = wait_for("the task's agent running", lambda: _running(c, task.id), 60)
        victim = first.orchestrator
        written = _deadline(c.workspace(victim))
        wait_for("a renewal", lambda: _deadline(c.workspace(victim)) != written, ttl)
        c.members[victim].kill()  # the orchestrator alone: its agent runs on
        exit_file = AgentFiles.of(c.workspace(victim), first.id).control / "exit.json"
        wait_for("the shim to fence the agent", exit_file.exists, ttl)
        assert json.loads(exit_file.read_text())["fenced"] is True and not c.live_processes(victim)
        c.start_member(victim)
        crashed = wait_for("the run settled", lambda: _settled(c, first.id), ttl)
        gate.write_text("open\n")
        c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=60)
        assert crashed.outcome == agent_pb2.AGENT_OUTCOME_CRASHED and crashed.error.startswith("fenced:")
        assert _taken_over(c, first.id) is None
        assert c.get_task(task.id).retry_count == 1
    finally:
        c.close()


def _settled(c: Fleet, agent_id: str) -> agent_pb2.Agent | None:
    found = [agent for agent in c.all_agents() if agent.id == agent_id and agent.status not in LIVE]
    return found[0] if found else None
