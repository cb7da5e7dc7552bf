"""Authentication and the client's rights in the store, each written as the attack it stops."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cw.store.v1 import account_pb2, agent_pb2, event_pb2, initiative_pb2, log_chunk_pb2, phase_pb2, task_pb2
from cw.store.v1 import chat_session_pb2 as chat
from tests.support import RunningStore, authorized_channel, call_error, list_services_v1, stubs


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _phase(api: SimpleNamespace, **fields: Any) -> phase_pb2.Phase:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Auth"))
    )
    return api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="P", **fields))
    )


def test_a_call_without_a_valid_token_is_unauthenticated_and_health_still_answers(store: RunningStore) -> None:
    request = task_pb2.GetTaskRequest(id="anything")
    with grpc.insecure_channel(store.address) as bare:
        error = call_error(stubs(bare).tasks.GetTask, request)
        assert error.code == grpc.StatusCode.UNAUTHENTICATED and error.reason == "UNAUTHENTICATED"
        assert "no bearer token" in error.message
        reply = health_pb2_grpc.HealthStub(bare).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with authorized_channel(store.address, "guessed-token") as guessing:
        error = call_error(stubs(guessing).tasks.GetTask, request)
        assert error.code == grpc.StatusCode.UNAUTHENTICATED and "not valid" in error.message


def test_only_the_orchestrator_reads_account_secrets(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    account = client_api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@x", credentials="sk-ant-XYZ"))
    )
    request = account_pb2.GetAccountSecretsRequest(id=account.id)
    error = call_error(client_api.accounts.GetAccountSecrets, request)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and error.reason == "PERMISSION_DENIED"
    assert "sk-ant-XYZ" not in error.message
    assert api.accounts.GetAccountSecrets(request).credentials == "sk-ant-XYZ"


def test_a_client_cannot_forge_an_agent_row(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    forged = agent_pb2.Agent(name="forged", worktree_id="../../../../tmp/elsewhere", pid=1)
    error = call_error(client_api.agents.CreateAgent, agent_pb2.CreateAgentRequest(agent=forged))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and "orchestrator only" in error.message
    assert not api.agents.ListAgents(agent_pb2.ListAgentsRequest()).agents
    event = event_pb2.Event(type="agent:spawned")
    smuggled = event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=forged))
    appended = event_pb2.AppendEventRequest(events=[event], changes=[smuggled])
    assert call_error(client_api.events.AppendEvent, appended).code == grpc.StatusCode.PERMISSION_DENIED
    chunk = log_chunk_pb2.CreateLogChunkRequest(log_chunk=log_chunk_pb2.LogChunk(agent_id="a", content="x"))
    assert call_error(client_api.log_chunks.CreateLogChunk, chunk).code == grpc.StatusCode.PERMISSION_DENIED


def test_a_client_only_dismisses_an_agent(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    agent = api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="a", worktree_id="a")))
    moved = agent_pb2.UpdateAgentRequest(agent=agent_pb2.Agent(id=agent.id, worktree_id="/srv"), update_mask=_mask())
    error = call_error(client_api.agents.UpdateAgent, moved)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and error.metadata["field"] == "agent.worktree_id"
    dismissed = agent_pb2.Agent(id=agent.id)
    dismissed.user_dismiss_time.GetCurrentTime()
    request = agent_pb2.UpdateAgentRequest(agent=dismissed, update_mask=_mask("user_dismiss_time"))
    assert client_api.agents.UpdateAgent(request).HasField("user_dismiss_time")
    deleting = agent_pb2.DeleteAgentRequest(id=agent.id)
    assert call_error(client_api.agents.DeleteAgent, deleting).code == grpc.StatusCode.PERMISSION_DENIED


def test_a_client_cannot_complete_a_phase_with_a_merge_base(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    """The attack: COMPLETED with git's empty tree as merge_base made GetPhaseDiff show a whole repository."""
    phase = _phase(client_api)
    empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    forged = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_COMPLETED, merge_base=empty_tree)
    error = call_error(client_api.phases.UpdatePhase, phase_pb2.UpdatePhaseRequest(phase=forged))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and error.metadata["field"] == "phase.merge_base"
    completed = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_COMPLETED)
    error = call_error(client_api.phases.UpdatePhase, phase_pb2.UpdatePhaseRequest(phase=completed))
    assert error.metadata["field"] == "phase.status"
    assert "PHASE_STATUS_PENDING to PHASE_STATUS_COMPLETED" in error.message
    stored = api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id))
    assert stored.status == phase_pb2.PHASE_STATUS_PENDING and not stored.merge_base
    born_done = phase_pb2.CreatePhaseRequest(
        phase=phase_pb2.Phase(initiative_id=phase.initiative_id, name="Q", status=phase_pb2.PHASE_STATUS_COMPLETED)
    )
    assert call_error(client_api.phases.CreatePhase, born_done).code == grpc.StatusCode.PERMISSION_DENIED


def test_a_change_set_is_no_way_around_the_rights(client_api: SimpleNamespace) -> None:
    phase = _phase(client_api)
    session = client_api.chat_sessions.CreateChatSession(
        chat.CreateChatSessionRequest(
            chat_session=chat.ChatSession(
                target_type=chat.CHAT_TARGET_TYPE_PHASE, target_id=phase.id, initiative_id=phase.initiative_id
            )
        )
    )
    after = struct_pb2.Struct()
    after.update({"status": "PHASE_STATUS_COMPLETED"})
    entry = chat.ChangeSetEntry(
        entity_type=chat.CHANGE_ENTITY_TYPE_PHASE, action=chat.CHANGE_ACTION_UPDATE, entity_id=phase.id, after=after
    )
    request = chat.ApplyChangeSetRequest(chat_session_id=session.id, changes=[entry])
    error = call_error(client_api.chat_sessions.ApplyChangeSet, request)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and error.metadata["field"] == "changes[0].after.status"


def test_what_a_person_does_through_the_store_still_works(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    phase = _phase(client_api)
    approve = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_APPROVED)
    approved = client_api.phases.UpdatePhase(phase_pb2.UpdatePhaseRequest(phase=approve, update_mask=_mask("status")))
    assert approved.status == phase_pb2.PHASE_STATUS_APPROVED
    # Sending back a row as it was read sets nothing new, orchestrator-owned fields included.
    api.phases.UpdatePhase(phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=phase.id, reason="waiting")))
    read = client_api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase.id))
    read.name = "Renamed"
    assert client_api.phases.UpdatePhase(phase_pb2.UpdatePhaseRequest(phase=read)).name == "Renamed"

    task = client_api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t", phase_id=phase.id)))
    blocked = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_BLOCKED, retry_count=3, reason="crashed")
    api.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task=blocked))
    retry = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_PENDING, retry_count=0)
    retried = client_api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(task=retry, update_mask=_mask("status", "retry_count"))
    )
    assert retried.status == task_pb2.TASK_STATUS_PENDING and retried.retry_count == 0
    done = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_COMPLETED, summary="fake")
    error = call_error(client_api.tasks.UpdateTask, task_pb2.UpdateTaskRequest(task=done, update_mask=_mask("status")))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED and "TASK_STATUS_COMPLETED" in error.message

    initiative = initiative_pb2.Initiative(id=phase.initiative_id, status=initiative_pb2.INITIATIVE_STATUS_ARCHIVED)
    archived = client_api.initiatives.UpdateInitiative(initiative_pb2.UpdateInitiativeRequest(initiative=initiative))
    assert archived.status == initiative_pb2.INITIATIVE_STATUS_ARCHIVED


def test_reflection_v1_answers_with_a_token(store: RunningStore) -> None:
    with store.channel() as channel:
        names = list_services_v1(channel)
    assert {"cw.store.v1.TaskService", "grpc.reflection.v1.ServerReflection"} <= set(names)
    assert "grpc.reflection.v1alpha.ServerReflection" in names
    with grpc.insecure_channel(store.address) as bare:
        try:
            list_services_v1(bare)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        else:
            raise AssertionError("reflection answered without a token")
