"""The store keeps work from moving early, whoever writes and however stale their view (the
invariants of store_service/rules/progress.py): each refused write answers
FAILED_PRECONDITION with reason NOT_READY, names what is missing, and writes nothing."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from tests.support import call_error

FAILED = grpc.StatusCode.FAILED_PRECONDITION
MERGED_AT = timestamp_pb2.Timestamp(seconds=1_700_000_000)


def _initiative(api: SimpleNamespace) -> initiative_pb2.Initiative:
    return api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Progress"))
    )


def _phase(api: SimpleNamespace, initiative_id: str, name: str, depends_on: list[str] | None = None) -> phase_pb2.Phase:
    return api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative_id, name=name), depends_on_phase_ids=depends_on or []
        )
    )


def _task(
    api: SimpleNamespace, phase: phase_pb2.Phase, name: str, depends_on: list[str] | None = None
) -> task_pb2.Task:
    request = task_pb2.CreateTaskRequest(
        task=task_pb2.Task(phase_id=phase.id, name=name), depends_on_task_ids=depends_on or []
    )
    return api.tasks.CreateTask(request)


def _task_update(task_id: str, **values: object) -> task_pb2.UpdateTaskRequest:
    return task_pb2.UpdateTaskRequest(
        task=task_pb2.Task(id=task_id, **values),  # type: ignore[arg-type]
        update_mask=field_mask_pb2.FieldMask(paths=list(values)),
    )


def _phase_update(phase_id: str, status: phase_pb2.PhaseStatus.ValueType) -> phase_pb2.UpdatePhaseRequest:
    return phase_pb2.UpdatePhaseRequest(
        phase=phase_pb2.Phase(id=phase_id, status=status), update_mask=field_mask_pb2.FieldMask(paths=["status"])
    )


def _initiative_update(
    initiative_id: str, status: initiative_pb2.InitiativeStatus.ValueType
) -> initiative_pb2.UpdateInitiativeRequest:
    return initiative_pb2.UpdateInitiativeRequest(
        initiative=initiative_pb2.Initiative(id=initiative_id, status=status),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )


def _finish(api: SimpleNamespace, task: task_pb2.Task, merged: bool = True) -> None:
    values: dict[str, object] = {"status": task_pb2.TASK_STATUS_COMPLETED}
    if merged:
        values["merge_time"] = MERGED_AT
    api.tasks.UpdateTask(_task_update(task.id, **values))


def _head(api: SimpleNamespace) -> int:
    return int(api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence)


def _refused(api: SimpleNamespace, call: object, request: object, *words: str) -> str:
    head = _head(api)
    error = call_error(call, request)
    assert (error.code, error.reason) == (FAILED, "NOT_READY"), error
    for word in words:
        assert word in error.message, (word, error.message)
    assert _head(api) == head, "a refused write wrote nothing"
    return error.message


def test_a_phase_without_tasks_never_goes_to_review(api: SimpleNamespace) -> None:
    phase = _phase(api, _initiative(api).id, "empty")
    review = _phase_update(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    _refused(api, api.phases.UpdatePhase, review, "has no tasks", "PENDING_REVIEW")
    stored = api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id))
    assert stored.status == phase_pb2.PHASE_STATUS_PENDING


def test_a_phase_goes_to_review_only_once_every_task_is_completed_and_merged(api: SimpleNamespace) -> None:
    phase = _phase(api, _initiative(api).id, "work")
    first, second = _task(api, phase, "first"), _task(api, phase, "second")
    review = _phase_update(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    _refused(api, api.phases.UpdatePhase, review, "2 of its 2 tasks", "'first' (PENDING)", "'second' (PENDING)")
    _finish(api, first)
    _finish(api, second, merged=False)
    _refused(api, api.phases.UpdatePhase, review, "1 of its 2 tasks", "'second' (COMPLETED, NOT MERGED)")
    _finish(api, second)
    assert api.phases.UpdatePhase(review).status == phase_pb2.PHASE_STATUS_PENDING_REVIEW


def test_a_phase_is_merged_only_with_all_its_work_merged(api: SimpleNamespace) -> None:
    phase = _phase(api, _initiative(api).id, "work")
    _task(api, phase, "unfinished")
    completed = _phase_update(phase.id, phase_pb2.PHASE_STATUS_COMPLETED)
    _refused(api, api.phases.UpdatePhase, completed, "cannot become COMPLETED", "'unfinished' (PENDING)")


def test_the_invariant_holds_for_the_state_one_transaction_leaves_whatever_the_order(api: SimpleNamespace) -> None:
    """The orchestrator writes a task's merge and its phase's review in one AppendEvent: the
    phase's change listed first is judged with the task's merge in place."""
    phase = _phase(api, _initiative(api).id, "work")
    task = _task(api, phase, "last")
    api.tasks.UpdateTask(_task_update(task.id, status=task_pb2.TASK_STATUS_COMPLETED))
    changes = [
        event_pb2.StateChange(update_phase=_phase_update(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)),
        event_pb2.StateChange(update_task=_task_update(task.id, merge_time=MERGED_AT)),
    ]
    api.events.AppendEvent(event_pb2.AppendEventRequest(changes=changes))
    stored = api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id))
    assert stored.status == phase_pb2.PHASE_STATUS_PENDING_REVIEW


def test_an_initiative_completes_only_when_every_phase_has(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    phase = _phase(api, initiative.id, "open")
    task = _task(api, phase, "t")
    for status in (initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW, initiative_pb2.INITIATIVE_STATUS_COMPLETED):
        request = _initiative_update(initiative.id, status)
        _refused(api, api.initiatives.UpdateInitiative, request, "1 of its 1 phases", "'open' (PENDING)")
    _finish(api, task)
    api.phases.UpdatePhase(_phase_update(phase.id, phase_pb2.PHASE_STATUS_COMPLETED))
    completed = _initiative_update(initiative.id, initiative_pb2.INITIATIVE_STATUS_COMPLETED)
    done = api.initiatives.UpdateInitiative(completed)
    assert done.status == initiative_pb2.INITIATIVE_STATUS_COMPLETED


def test_a_task_starts_only_after_its_dependencies_and_its_phase_dependencies(api: SimpleNamespace) -> None:
    initiative = _initiative(api)
    earlier = _phase(api, initiative.id, "earlier")
    earlier_task = _task(api, earlier, "groundwork")
    later = _phase(api, initiative.id, "later", depends_on=[earlier.id])
    base = _task(api, later, "base")
    dependent = _task(api, later, "dependent", depends_on=[base.id])
    start = _task_update(dependent.id, status=task_pb2.TASK_STATUS_IN_PROGRESS)
    message = _refused(api, api.tasks.UpdateTask, start, "cannot start", "task 'base' (PENDING)", "phase 'earlier'")
    assert "groundwork" not in message

    _finish(api, base, merged=False)
    _refused(api, api.tasks.UpdateTask, start, "phase 'earlier' (PENDING)")
    _finish(api, earlier_task)
    api.phases.UpdatePhase(_phase_update(earlier.id, phase_pb2.PHASE_STATUS_COMPLETED))
    assert api.tasks.UpdateTask(start).status == task_pb2.TASK_STATUS_IN_PROGRESS


def test_no_agent_runs_for_a_task_whose_dependencies_are_not_done(api: SimpleNamespace) -> None:
    phase = _phase(api, _initiative(api).id, "work")
    base = _task(api, phase, "base")
    dependent = _task(api, phase, "dependent", depends_on=[base.id])
    agent = agent_pb2.Agent(name="early", task_id=dependent.id, worktree_id="wt", status=agent_pb2.AGENT_STATUS_RUNNING)
    changes = [
        event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=agent)),
    ]
    request = event_pb2.AppendEventRequest(changes=changes)
    _refused(api, api.events.AppendEvent, request, "no agent can run", "task 'base' (PENDING)")
    _finish(api, base)
    answer = api.events.AppendEvent(request)
    assert answer.rows[0].agent.task_id == dependent.id


def _live_agent(name: str, task_id: str) -> event_pb2.StateChange:
    agent = agent_pb2.Agent(name=name, task_id=task_id, worktree_id="wt", status=agent_pb2.AGENT_STATUS_RUNNING)
    return event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=agent))


def test_a_task_has_at_most_one_live_agent(api: SimpleNamespace) -> None:
    """A task has at most one live agent (README.md, "Decisions a lagging cache cannot make wrong"),
    whoever decides from what: a second live agent is refused; ending the first in the same write
    lets the next one live."""
    task = _task(api, _phase(api, _initiative(api).id, "work"), "t")
    first = api.events.AppendEvent(event_pb2.AppendEventRequest(changes=[_live_agent("first", task.id)])).rows[0].agent
    request = event_pb2.AppendEventRequest(changes=[_live_agent("second", task.id)])
    _refused(api, api.events.AppendEvent, request, "already has a live agent", "'first' (RUNNING)")

    waiting = agent_pb2.Agent(id=first.id, status=agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
    api.agents.UpdateAgent(
        agent_pb2.UpdateAgentRequest(agent=waiting, update_mask=field_mask_pb2.FieldMask(paths=["status"]))
    )
    _refused(api, api.events.AppendEvent, request, "'first' (WAITING_FOR_INPUT)")
    ended = agent_pb2.UpdateAgentRequest(
        agent=agent_pb2.Agent(id=first.id, status=agent_pb2.AGENT_STATUS_CRASHED),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )
    changes = [event_pb2.StateChange(update_agent=ended), *request.changes]
    second = api.events.AppendEvent(event_pb2.AppendEventRequest(changes=changes)).rows[1].agent
    assert second.status == agent_pb2.AGENT_STATUS_RUNNING
    resumed = agent_pb2.UpdateAgentRequest(
        agent=agent_pb2.Agent(id=first.id, status=agent_pb2.AGENT_STATUS_RUNNING),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )
    _refused(api, api.agents.UpdateAgent, resumed, "'second' (RUNNING)")
