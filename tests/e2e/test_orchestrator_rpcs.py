"""The orchestrator's RPCs on their own: phase-less dispatch, stop, output, and refusals."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import agent_pb2, task_pb2
from tests.e2e.cluster import cluster, script, wait_for
from tests.support import error_details


def _fails(call: object, request: object) -> grpc.RpcError:
    try:
        call(request, timeout=10)  # type: ignore[operator]
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call should have failed")


def test_dispatch_task_without_a_phase_and_follow_its_output(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        initiative = c.initiative("Loose", c.project())
        task = c.api.tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                task=task_pb2.Task(
                    initiative_id=initiative.id,
                    name="loose",
                    description=script(files={"loose.txt": "x"}, wait_for=str(release)),
                )
            )
        )
        queued = c.orch.DispatchTask(orch.DispatchTaskRequest(task_id=task.id), timeout=10)
        assert queued.id == task.id
        agent = wait_for("the agent", lambda: c.agents_of(task.id))[0]
        stream = c.orch.StreamAgentOutput(orch.StreamAgentOutputRequest(agent_id=agent.id, follow=True), timeout=60)
        first = next(stream)
        assert first.offset == 0 and b'"init"' in first.data
        release.touch()
        rest = b"".join(chunk.data for chunk in stream)  # ends when the agent stops running
        assert b'"result"' in rest
        done = c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        assert done.status == task_pb2.TASK_STATUS_COMPLETED
        c.assert_invariants()


def test_stop_agent_blocks_its_task(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Stop", c.project()), "P")
        task = c.task(phase, "t", wait_for=str(tmp_path / "never"))
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for("a running agent", lambda: [a for a in c.agents_of(task.id) if a.pid])[0]
        stopped = c.orch.StopAgent(orch.StopAgentRequest(agent_id=agent.id), timeout=10)
        assert stopped.status == agent_pb2.AGENT_STATUS_STOPPED
        assert c.get_task(task.id).status == task_pb2.TASK_STATUS_BLOCKED
        wait_for("the agent's processes to end", lambda: _gone(agent.pid))
        c.assert_invariants()


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


_HUGE = orch.QuestionAnswer(question_id="q" * 2**20, answer="a")


@pytest.mark.parametrize(
    ("method", "request_message", "code"),
    [
        ("ApprovePhase", orch.ApprovePhaseRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ("ApprovePhase", orch.ApprovePhaseRequest(phase_id="missing"), grpc.StatusCode.NOT_FOUND),
        ("DispatchTask", orch.DispatchTaskRequest(task_id="missing"), grpc.StatusCode.NOT_FOUND),
        ("RetryBlockedTask", orch.RetryBlockedTaskRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ("MergePhase", orch.MergePhaseRequest(phase_id="missing"), grpc.StatusCode.NOT_FOUND),
        ("GetPhaseDiff", orch.GetPhaseDiffRequest(phase_id="missing"), grpc.StatusCode.NOT_FOUND),
        ("StopAgent", orch.StopAgentRequest(agent_id="missing"), grpc.StatusCode.NOT_FOUND),
        ("AnswerQuestions", orch.AnswerQuestionsRequest(agent_id="missing"), grpc.StatusCode.INVALID_ARGUMENT),
        # The refusal quotes the id: quoted whole, 1 MiB of it overflowed the answer's trailers and
        # the client saw RESOURCE_EXHAUSTED (found by the fuzz test).
        (
            "AnswerQuestions",
            orch.AnswerQuestionsRequest(agent_id="a", answers=[_HUGE, _HUGE]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_requests(tmp_path: Path, method: str, request_message: object, code: grpc.StatusCode) -> None:
    with cluster(tmp_path) as c:
        error = _fails(getattr(c.orch, method), request_message)
        assert error.code() == code
        assert "Traceback" not in (error.details() or "")


def test_state_transitions_that_are_not_allowed(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Rules", c.project()), "P")
        task = c.task(phase, "t")
        for call, request in (
            (c.orch.MergePhase, orch.MergePhaseRequest(phase_id=phase.id)),
            (c.orch.GetPhaseDiff, orch.GetPhaseDiffRequest(phase_id=phase.id)),
            (c.orch.DispatchTask, orch.DispatchTaskRequest(task_id=task.id)),
            (c.orch.RetryBlockedTask, orch.RetryBlockedTaskRequest(task_id=task.id)),
        ):
            error = _fails(call, request)
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_details(error).reason


def test_stream_events_filters_by_type_and_initiative(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        project = c.project()
        first = c.initiative("First", project)
        c.initiative("Second", project)
        c.phase(first, "P")
        stream = c.orch.StreamEvents(
            orch.StreamEventsRequest(types=["phase:created", "initiative:created"], initiative_id=first.id), timeout=10
        )
        received = [next(stream), next(stream)]
        stream.cancel()
        assert [e.type for e in received] == ["initiative:created", "phase:created"]
        assert {e.initiative_id for e in received} == {first.id}


def test_stop_right_after_dispatch_leaves_no_process_behind(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        phase = c.phase(c.initiative("Quick stop", c.project()), "P")
        task = c.task(phase, "t", wait_for=str(tmp_path / "never"))
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for("an agent record", lambda: c.agents_of(task.id))[0]
        c.orch.StopAgent(orch.StopAgentRequest(agent_id=agent.id), timeout=10)
        stopped = c.agents_of(task.id)[0]
        assert stopped.pid, "the process was started before the stop was taken"
        wait_for("the agent's processes to end", lambda: _gone(stopped.pid))
