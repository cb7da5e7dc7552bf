"""Three orchestrators, each with its own workspace, on one store (one PostgreSQL database served
by two store replicas) and one directory of shared remotes, run an initiative of 3 phases and 32
tasks. Mid-run one of them dies with its machine: its orchestrator and every agent it ran are
SIGKILLed. Its runs are taken over once its lease lapses, its tasks finish on the other two,
continuing on the commits it had pushed, and everything completes exactly once; no sampled moment
shows a task with two live agents. Also a partition, on SQLite: an orchestrator cut off
from the store fences itself."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from store_service.db.location import PostgresDatabase
from tests.e2e.cluster import wait_for
from tests.e2e.fleet import Fleet, Sampler, fleet, git_out
from tests.e2e.proxy import Proxy

MEMBERS = ("east", "west", "north")
HELD = 12  # phase 1: every slot of the three orchestrators (4 each) holds one of these
LATER = 10  # phases 2 and 3


def _build(c: Fleet, gate: Path) -> tuple[initiative_pb2.Initiative, list[phase_pb2.Phase], dict[str, task_pb2.Task]]:
    project = c.project()
    initiative = c.initiative("Scale out", project)
    first = c.phase(initiative, "held")
    second = c.phase(initiative, "second", after=[first.id])
    third = c.phase(initiative, "third", after=[second.id])
    tasks: dict[str, task_pb2.Task] = {}
    for index in range(HELD):
        # The first attempt commits and crashes (its commits pushed when it is settled); the next one
        # holds until the gate opens: when the victim dies, its held runs are on pushed commits.
        name = f"held/t{index}.txt"
        plan: dict[str, Any] = {"files": {name: f"held {index}\n"}, "commit_then_crash": True}
        plan["retry_wait_for"] = str(gate)
        tasks[name] = c.task(first, f"h{index}", **plan)
    for phase, prefix in ((second, "second"), (third, "third")):
        previous: list[str] = []
        for index in range(LATER):
            name = f"{prefix}/t{index}.txt"
            after = previous[-1:] if index % 3 else []
            tasks[name] = c.task(phase, f"{prefix[0]}{index}", after=after, files={name: f"{prefix} {index}\n"})
            previous.append(tasks[name].id)
    return initiative, [first, second, third], tasks


def _held_everywhere(c: Fleet, held: list[task_pb2.Task]) -> dict[str, agent_pb2.Agent] | None:
    """Every held task on its second attempt, its agent's process running (the only agents' processes
    alive on any machine): the live agent of each."""
    live = {agent.task_id: agent for agent in c.live_agents() if agent.pid}
    ready = all(task.id in live and c.get_task(task.id).retry_count == 1 for task in held)
    running = ready and sorted(c.live_processes()) == sorted(agent.id for agent in live.values())
    return live if running else None


def _victim(c: Fleet, live: dict[str, agent_pb2.Agent]) -> tuple[str, list[str]]:
    """The orchestrator holding the most runs of tasks whose first, pushed attempt it ran too."""
    own: dict[str, list[str]] = {name: [] for name in MEMBERS}
    for task_id, agent in live.items():
        first = [a for a in c.agents_of(task_id) if a.outcome == agent_pb2.AGENT_OUTCOME_CRASHED]
        if first and first[0].orchestrator == agent.orchestrator:
            own[agent.orchestrator].append(task_id)
    victim = max(MEMBERS, key=lambda name: len(own[name]))
    return victim, own[victim]


def _merge_when_in_review(c: Fleet, phase: phase_pb2.Phase, member: str) -> None:
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=120)
    merged = c.stubs[member].MergePhase(orchestrator_pb2.MergePhaseRequest(phase_id=phase.id), timeout=60)
    assert merged.status == phase_pb2.PHASE_STATUS_COMPLETED


def test_three_orchestrators_share_an_initiative_and_one_dies_with_its_machine(
    tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    """On one PostgreSQL database served by two store replicas (the orchestrators on one or the
    other)."""
    # A 5 s lease: the suite runs in parallel on two cores, where a 2 s lease could lapse between
    # two renewals of a starved orchestrator (its agents then fenced, their attempts spent).
    c = fleet(tmp_path, max_agents=4, lease_ttl=5.0, database=postgres_database, replicas=2)
    gate = tmp_path / "gate"
    try:
        c.start_store()
        for name in MEMBERS:
            c.start_member(name)
        initiative, phases, tasks = _build(c, gate)
        held = [task for name, task in tasks.items() if name.startswith("held/")]
        with Sampler(c) as sampler:
            c.approve(*phases)
            live = wait_for("every held task on its second attempt", lambda: _held_everywhere(c, held), 120)
            assert Counter(agent.orchestrator for agent in live.values()) == Counter(dict.fromkeys(MEMBERS, 4))
            victim, pushed_by_victim = _victim(c, live)
            assert pushed_by_victim, "no task whose first attempt its current orchestrator ran"
            project = c.api.projects.ListProjects(project_pb2.ListProjectsRequest()).projects[0]
            project_remote = c.remote_of(project)
            assert project_remote == c.shared_dir / f"{project.id}.git"
            tips = [git_out(project_remote, "rev-parse", f"refs/heads/cw-task/{t}").strip() for t in pushed_by_victim]
            c.kill_member(victim)
            gate.write_text("open\n")
            survivors = [name for name in MEMBERS if name != victim]
            for phase, member in zip(phases, [*survivors, survivors[0]], strict=True):
                _merge_when_in_review(c, phase, member)
            wait_for("the initiative in review", lambda: _in_review(c, initiative), 60)
        assert sampler.samples > 50 and sampler.most_processes > 0, (sampler.samples, sampler.most_processes)
        assert not sampler.doubles, sampler.doubles
        _assert_exactly_once(c, tasks)
        _assert_taken_over(c, victim, live, survivors)
        _assert_work_kept(c, project_remote, initiative, tasks, tips)
    finally:
        c.close()


def _in_review(c: Fleet, initiative: initiative_pb2.Initiative) -> bool:
    stored = c.api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=initiative.id))
    return bool(stored.status == initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW)


def _assert_exactly_once(c: Fleet, tasks: dict[str, task_pb2.Task]) -> None:
    ids = {task.id for task in tasks.values()}
    assert all(c.get_task(task_id).status == task_pb2.TASK_STATUS_COMPLETED for task_id in ids)
    for kind in ("task:completed", "task:merged"):
        counted = Counter(event.task_id for event in c.events_of(kind) if event.task_id in ids)
        assert counted == Counter(dict.fromkeys(ids, 1)), kind
    for task_id in ids:
        done = [a for a in c.agents_of(task_id) if a.outcome == agent_pb2.AGENT_OUTCOME_DONE]
        assert len(done) == 1, task_id


def _assert_taken_over(c: Fleet, victim: str, live: dict[str, agent_pb2.Agent], survivors: list[str]) -> None:
    lost = {agent.id for agent in live.values() if agent.orchestrator == victim}
    taken = c.events_of("agent:taken_over")
    assert Counter(event.agent_id for event in taken) == Counter(dict.fromkeys(lost, 1))
    assert all(event.details["orchestrator"] == victim and event.details["by"] in survivors for event in taken)
    for agent in live.values():
        if agent.id in lost:
            stored = c.api.agents.GetAgent(agent_pb2.GetAgentRequest(id=agent.id))
            assert stored.status == agent_pb2.AGENT_STATUS_CRASHED and victim in stored.error
            finisher = [a for a in c.agents_of(agent.task_id) if a.outcome == agent_pb2.AGENT_OUTCOME_DONE]
            assert finisher[0].orchestrator in survivors
            assert c.get_task(agent.task_id).retry_count == 2  # the lost run counted as a crashed attempt
    joined = Counter(event.details["name"] for event in c.events_of("orchestrator:joined"))
    assert set(joined) == set(MEMBERS)


def _assert_work_kept(
    c: Fleet,
    remote: Path,
    initiative: initiative_pb2.Initiative,
    tasks: dict[str, task_pb2.Task],
    tips: list[str],
) -> None:
    """The initiative branch in the shared remote holds every task's files, both attempts' of the
    held ones, and every commit the victim had pushed before it died."""
    listed = set(git_out(remote, "ls-tree", "-r", "--name-only", initiative.branch).split())
    held = [name for name in tasks if name.startswith("held/")]
    assert set(tasks) | {f"second-attempt-{name}" for name in held} <= listed
    for commit in tips:
        git_out(remote, "merge-base", "--is-ancestor", commit, initiative.branch)


def test_an_orchestrator_cut_off_from_the_store_ends_its_agents_before_another_takes_them(tmp_path: Path) -> None:
    """A network partition, not a death: `east` and its agents live on, but it reaches the store
    no more. It ends its agents' processes before its lease may lapse (fencing); `west` takes the
    runs over once it lapsed and finishes the tasks; at no sampled moment does a task have two
    agents' processes alive. Once the network is back, `east` takes its lease again and goes on."""
    c = fleet(tmp_path, max_agents=2, lease_ttl=2.0)
    gate = tmp_path / "gate"
    proxy: Proxy | None = None
    try:
        c.start_store()
        assert c.store is not None
        proxy = Proxy(c.store.address)
        c.start_member("east", via=proxy.address)
        c.start_member("west")
        initiative = c.initiative("Partition", c.project())
        phase = c.phase(initiative, "held")
        tasks = [c.task(phase, f"t{index}", files={f"t{index}.txt": "x\n"}, wait_for=str(gate)) for index in range(4)]
        with Sampler(c) as sampler:
            c.approve(phase)
            live = wait_for("two agents running on each orchestrator", lambda: _running_on_both(c), 60)
            cut_off = {agent.id for agent in live if agent.orchestrator == "east"}
            proxy.cut()
            wait_for("east's agents' processes to end", lambda: not c.live_processes("east"), 10)
            taken = wait_for("west to take east's runs over", lambda: _taken_over(c, cut_off), 30)
            gate.write_text("open\n")
            for task in tasks:
                c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED, timeout=60)
            proxy.mend()
            wait_for("east to take its lease again", lambda: _rejoined(c, "east"), 30)
        assert not sampler.doubles, sampler.doubles
        assert sampler.most_processes >= 4
        assert {event.details["by"] for event in taken} == {"west"}
        for task in tasks:
            done = [a for a in c.agents_of(task.id) if a.outcome == agent_pb2.AGENT_OUTCOME_DONE]
            assert len(done) == 1
            crashed = [a for a in c.agents_of(task.id) if a.id in cut_off]
            assert not crashed or (done[0].orchestrator == "west" and c.get_task(task.id).retry_count == 1)
    finally:
        if proxy is not None:
            proxy.close()
        c.close()


def _running_on_both(c: Fleet) -> list[agent_pb2.Agent] | None:
    live = [agent for agent in c.live_agents() if agent.pid]
    on = Counter(agent.orchestrator for agent in live)
    running = sorted(c.live_processes()) == sorted(agent.id for agent in live)
    return live if on == Counter(east=2, west=2) and running else None


def _taken_over(c: Fleet, agent_ids: set[str]) -> list[event_pb2.Event] | None:
    taken = [event for event in c.events_of("agent:taken_over") if event.agent_id in agent_ids]
    return taken if {event.agent_id for event in taken} == agent_ids else None


def _rejoined(c: Fleet, name: str) -> bool:
    joined = [json_format.MessageToDict(event.details) for event in c.events_of("orchestrator:joined")]
    return any(details["name"] == name and details.get("lapsed") for details in joined)
