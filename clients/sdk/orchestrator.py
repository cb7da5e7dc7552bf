"""The orchestrator's API with typed methods."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import grpc

from clients.sdk.calls import StreamListener, call, request_id, resumable, with_heartbeat
from clients.sdk.channel import DEFAULT_ORCHESTRATOR, ServiceClient
from clients.sdk.errors import from_rpc_error
from clients.sdk.lazy import lazy_modules
from clients.sdk.methods import UNARY_METHODS
from clients.sdk.planning import chat_target

if TYPE_CHECKING:
    from cw.orchestrator.v1 import orchestrator_pb2 as orch
    from cw.orchestrator.v1 import orchestrator_pb2_grpc
    from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
else:
    orch, orchestrator_pb2_grpc = lazy_modules("cw.orchestrator.v1", "orchestrator_pb2", "orchestrator_pb2_grpc")
    (agent_pb2,) = lazy_modules("cw.store.v1", "agent_pb2")


class OrchestratorClient(ServiceClient):
    """One client per orchestrator address (default: $CW_ORCHESTRATOR, else 127.0.0.1:50052)."""

    service, address_variable, default_address = "orchestrator", "CW_ORCHESTRATOR", DEFAULT_ORCHESTRATOR
    methods = UNARY_METHODS["orchestrator"]

    @cached_property
    def stub(self) -> orchestrator_pb2_grpc.OrchestratorServiceStub:
        return orchestrator_pb2_grpc.OrchestratorServiceStub(self.channel)

    def approve_phase(self, phase_id: str) -> phase_pb2.Phase:
        return call(self.stub.ApprovePhase, orch.ApprovePhaseRequest(phase_id=phase_id))

    def dispatch_task(self, task_id: str) -> task_pb2.Task:
        return call(self.stub.DispatchTask, orch.DispatchTaskRequest(task_id=task_id))

    def phase_diff(self, phase_id: str) -> orch.GetPhaseDiffResponse:
        return call(self.stub.GetPhaseDiff, orch.GetPhaseDiffRequest(phase_id=phase_id))

    def merge_phase(self, phase_id: str) -> phase_pb2.Phase:
        return call(self.stub.MergePhase, orch.MergePhaseRequest(phase_id=phase_id))

    def request_changes(self, phase_id: str) -> phase_pb2.Phase:
        return call(self.stub.RequestChanges, orch.RequestChangesRequest(phase_id=phase_id))

    def initiative_diff(self, initiative_id: str) -> orch.GetInitiativeDiffResponse:
        return call(self.stub.GetInitiativeDiff, orch.GetInitiativeDiffRequest(initiative_id=initiative_id))

    def deliver_initiative(self, initiative_id: str) -> initiative_pb2.Initiative:
        return call(self.stub.DeliverInitiative, orch.DeliverInitiativeRequest(initiative_id=initiative_id))

    def retry_blocked_task(self, task_id: str) -> task_pb2.Task:
        return call(self.stub.RetryBlockedTask, orch.RetryBlockedTaskRequest(task_id=task_id))

    def stop_agent(self, agent_id: str) -> agent_pb2.Agent:
        return call(self.stub.StopAgent, orch.StopAgentRequest(agent_id=agent_id))

    def answer_questions(self, agent_id: str, answers: dict[str, str]) -> agent_pb2.Agent:
        request = orch.AnswerQuestionsRequest(
            agent_id=agent_id,
            answers=[orch.QuestionAnswer(question_id=qid, answer=text) for qid, text in answers.items()],
        )
        return call(self.stub.AnswerQuestions, request)

    def send_chat_message(self, kind: str, target_id: str, content: str) -> orch.SendChatMessageResponse:
        """`kind` is phase or task: the message goes to the target's active chat, answered by its agent."""
        request = orch.SendChatMessageRequest(
            target_type=chat_target(kind), target_id=target_id, content=content, request_id=request_id()
        )
        return call(self.stub.SendChatMessage, request)

    def agent_output(self, agent_id: str, follow: bool = False) -> Iterator[bytes]:
        try:
            for chunk in self.stub.StreamAgentOutput(orch.StreamAgentOutputRequest(agent_id=agent_id, follow=follow)):
                yield chunk.data
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def events(
        self,
        after_sequence: int = 0,
        types: Sequence[str] = (),
        initiative_id: str = "",
        heartbeat_seconds: float | None = None,
        on_state: StreamListener | None = None,
    ) -> Iterator[event_pb2.Event]:
        """Replays, then follows; resumes from the last sequence after a dropped connection or a
        restart of either service, with no gap and no duplicate, telling `on_state` when the
        orchestrator is lost and when it is back (see `resumable`). With `heartbeat_seconds`, an
        idle stream yields heartbeats (sequence 0) that often."""

        def open_stream(after: int) -> Iterator[event_pb2.Event]:
            request = orch.StreamEventsRequest(after_sequence=after, types=types, initiative_id=initiative_id)
            return self.stub.StreamEvents(with_heartbeat(request, heartbeat_seconds))

        return resumable(open_stream, after_sequence, on_state=on_state, heartbeats=heartbeat_seconds is not None)

    def usage(self, scope: str = "", id: str = "") -> orch.GetUsageResponse:
        """What agents used: `scope` is task, phase, initiative, account or provider (empty: all);
        one total for `id`, or one per member of the scope."""
        group = agent_pb2.UsageGroup.Value(f"USAGE_GROUP_{scope.upper()}") if scope else 0
        return call(self.stub.GetUsage, orch.GetUsageRequest(scope=group, id=id))  # type: ignore[arg-type]
