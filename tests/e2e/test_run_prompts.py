"""A run is told the other tasks of its phase and the agent of each by name, whom it may ask: from
what the events carried while the orchestrator follows the log, and read again after a restart,
when the initiative's earlier agents are older than its following (orchestrator_service/cache/known.py)."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import phase_pb2, task_pb2
from tests.e2e.cluster import Cluster, cluster

COMPLETED = task_pb2.TASK_STATUS_COMPLETED


def _prompt(c: Cluster, task_id: str) -> str:
    """What the task's one run was told (the scripted agent logs it)."""
    (run,) = [run for run in (c.state_dir / f"prompts-{task_id}.txt").read_text().split("=== run of ") if run]
    return run


def _line(c: Cluster, task: task_pb2.Task, status: str) -> str:
    return f"- {task.name} (task {task.id}, agent {c.agents_of(task.id)[0].name}, {status})"


def test_a_run_is_told_its_neighbours_agents_by_name_from_the_cache_and_after_a_restart(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Names", c.project()), "P")
        held = c.task(phase, "held", files={"h.txt": "h"}, wait_for=str(gate))  # keeps the phase in progress
        first = c.task(phase, "first", files={"a.txt": "a"})
        second = c.task(phase, "second", after=[first.id], files={"b.txt": "b"})
        c.approve(phase)
        c.wait_task(second.id, COMPLETED)
        told = _prompt(c, second.id)
        assert _line(c, first, "completed") in told and _line(c, held, "in_progress") in told
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator()
        third = c.task(phase, "third", after=[second.id], files={"c.txt": "c"})
        c.wait_task(third.id, COMPLETED)
        told = _prompt(c, third.id)
        for line in (_line(c, second, "completed"), _line(c, first, "completed"), _line(c, held, "in_progress")):
            assert line in told
        gate.touch()
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        c.assert_invariants()
