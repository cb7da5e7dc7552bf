"""Status sets, the merged filter and paged dependency edges: what the orchestrator's cache lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, task_pb2
from tests.support import RunningStore, call_error

PENDING, IN_PROGRESS = task_pb2.TASK_STATUS_PENDING, task_pb2.TASK_STATUS_IN_PROGRESS
COMPLETED, BLOCKED = task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_BLOCKED


def _seed_tasks(store: RunningStore) -> dict[str, str]:
    """Task id -> a label saying its status and whether it is merged."""
    labels = {}
    with store.handle.db.units.write() as uow:
        for status in ("pending", "in_progress", "completed", "blocked"):
            for merged in (False, True):
                merge_time = datetime(2026, 1, 1) if merged else None
                task = uow.tasks.create(name=status, status=status, merge_time=merge_time)
                labels[task.id] = f"{status}{'+merged' if merged else ''}"
        uow.commit()
    return labels


def _listed(api: SimpleNamespace, labels: dict[str, str], **filters: Any) -> list[str]:
    tasks = api.tasks.ListTasks(task_pb2.ListTasksRequest(**filters)).tasks
    return sorted(labels[task.id] for task in tasks)


def test_task_statuses_and_merged_combine_by_and(store: RunningStore, api: SimpleNamespace) -> None:
    labels = _seed_tasks(store)
    assert _listed(api, labels, statuses=[PENDING, BLOCKED]) == [
        "blocked",
        "blocked+merged",
        "pending",
        "pending+merged",
    ]
    assert _listed(api, labels, statuses=[PENDING, BLOCKED], status=PENDING) == ["pending", "pending+merged"]
    assert _listed(api, labels, statuses=[PENDING], status=COMPLETED) == []
    assert _listed(api, labels, merged=True, statuses=[COMPLETED, IN_PROGRESS]) == [
        "completed+merged",
        "in_progress+merged",
    ]
    assert _listed(api, labels, merged=False, status=COMPLETED) == ["completed"]
    assert len(_listed(api, labels, merged=False)) == 4
    assert len(_listed(api, labels)) == 8


def test_a_status_set_pages_through_every_row_and_binds_its_tokens(store: RunningStore, api: SimpleNamespace) -> None:
    labels = _seed_tasks(store)
    request = task_pb2.ListTasksRequest(statuses=[PENDING, COMPLETED, BLOCKED], page_size=2)
    seen: list[str] = []
    while True:
        page = api.tasks.ListTasks(request)
        seen += [task.id for task in page.tasks]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
        moved = task_pb2.ListTasksRequest(statuses=[PENDING], page_size=2, page_token=page.next_page_token)
        refused = call_error(api.tasks.ListTasks, moved)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and refused.violations == ["page_token"]
    assert sorted(labels[task_id] for task_id in seen) == sorted(
        label for label in labels.values() if not label.startswith("in_progress")
    )
    assert len(seen) == len(set(seen)) == 6


def test_unknown_or_unspecified_status_in_a_set_is_refused_naming_it(api: SimpleNamespace) -> None:
    for bad in (99, task_pb2.TASK_STATUS_UNSPECIFIED):
        error = call_error(api.tasks.ListTasks, task_pb2.ListTasksRequest(statuses=[PENDING, bad]))  # type: ignore[list-item]
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.violations == ["statuses[1]"]


def _initiative_id(api: SimpleNamespace) -> str:
    request = initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="phases"))
    return str(api.initiatives.CreateInitiative(request).id)


# Per resource: make a row in a status, list rows in a set of statuses, three statuses to use.
_STATUS_LISTS: dict[str, tuple[Callable[[SimpleNamespace, int, Any], Any], Callable[..., Any], list[Any]]] = {
    "initiative": (
        lambda api, index, status: api.initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(
                initiative=initiative_pb2.Initiative(name=f"i{index}", status=status)
            )
        ),
        lambda api, statuses: (
            api.initiatives.ListInitiatives(initiative_pb2.ListInitiativesRequest(statuses=statuses)).initiatives
        ),
        [
            initiative_pb2.INITIATIVE_STATUS_ACTIVE,
            initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW,
            initiative_pb2.INITIATIVE_STATUS_ARCHIVED,
        ],
    ),
    "phase": (
        lambda api, index, status: api.phases.CreatePhase(
            phase_pb2.CreatePhaseRequest(
                phase=phase_pb2.Phase(initiative_id=_initiative_id(api), name="p", status=status)
            )
        ),
        lambda api, statuses: api.phases.ListPhases(phase_pb2.ListPhasesRequest(statuses=statuses)).phases,
        [phase_pb2.PHASE_STATUS_APPROVED, phase_pb2.PHASE_STATUS_PENDING, phase_pb2.PHASE_STATUS_COMPLETED],
    ),
    "agent": (
        lambda api, index, status: api.agents.CreateAgent(
            agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name=f"a{index}", worktree_id="/w", status=status))
        ),
        lambda api, statuses: api.agents.ListAgents(agent_pb2.ListAgentsRequest(statuses=statuses)).agents,
        [agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT, agent_pb2.AGENT_STATUS_CRASHED],
    ),
}


@pytest.mark.parametrize("resource", sorted(_STATUS_LISTS))
def test_phases_agents_and_initiatives_take_status_sets(api: SimpleNamespace, resource: str) -> None:
    make, listed, statuses = _STATUS_LISTS[resource]
    made = {make(api, index, status).id: status for index, status in enumerate(statuses)}
    assert sorted(made[row.id] for row in listed(api, statuses[:2])) == sorted(statuses[:2])
    assert [made[row.id] for row in listed(api, statuses[2:])] == statuses[2:]


def _seed_star(store: RunningStore, leaves: int) -> tuple[str, list[str]]:
    """One root task and `leaves` tasks that each depend on it."""
    with store.handle.db.units.write() as uow:
        root = uow.tasks.create(name="root").id
        dependents = [uow.tasks.create(name=f"leaf{i}").id for i in range(leaves)]
        for dependent in dependents:
            uow.tasks.create_dependency(dependent, root)
        uow.commit()
    return root, dependents


def test_dependency_edges_of_a_task_set_page_by_a_thousand(store: RunningStore, api: SimpleNamespace) -> None:
    root, dependents = _seed_star(store, 1001)
    first = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest())
    assert len(first.dependencies) == 1000 and first.next_page_token
    rest = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(page_token=first.next_page_token))
    assert len(rest.dependencies) == 1 and not rest.next_page_token
    assert {e.task_id for e in [*first.dependencies, *rest.dependencies]} == set(dependents)

    chosen = [*dependents[10:15], root]
    request = task_pb2.ListTaskDependenciesRequest(task_ids=chosen, page_size=2)
    edges = []
    while True:
        page = api.tasks.ListTaskDependencies(request)
        edges += [(e.task_id, e.depends_on_task_id) for e in page.dependencies]
        if not page.next_page_token:
            break
        other = task_pb2.ListTaskDependenciesRequest(task_ids=chosen[:1], page_token=page.next_page_token)
        refused = call_error(api.tasks.ListTaskDependencies, other)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and refused.violations == ["page_token"]
        request.page_token = page.next_page_token
    assert sorted(edges) == sorted((leaf, root) for leaf in dependents[10:15])

    too_many = call_error(api.tasks.ListTaskDependencies, task_pb2.ListTaskDependenciesRequest(task_ids=dependents))
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT and too_many.violations == ["task_ids"]
    touching = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(task_id=dependents[0]))
    assert [(e.task_id, e.depends_on_task_id) for e in touching.dependencies] == [(dependents[0], root)]
