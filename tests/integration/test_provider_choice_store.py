"""Providers in the store (SQLite and PostgreSQL): a task's and an initiative's provider,
an initiative's fallback providers, checked as written; an account's cap on live agents, kept by
GetNextAvailableAccount and by the write that makes an agent live (NOT_READY past it)."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import field_mask_pb2

from cw.store.v1 import account_pb2, agent_pb2, event_pb2, initiative_pb2, phase_pb2, task_pb2
from store_service.domain.rules import MAX_FALLBACK_PROVIDERS
from tests.support import call_error


def _initiative(api: SimpleNamespace, **values: object) -> initiative_pb2.Initiative:
    initiative = initiative_pb2.Initiative(name="Providers", **values)  # type: ignore[arg-type]
    return api.initiatives.CreateInitiative(initiative_pb2.CreateInitiativeRequest(initiative=initiative))


def _task(api: SimpleNamespace, initiative_id: str, name: str, **values: object) -> task_pb2.Task:
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative_id, name=f"phase of {name}"))
    )
    task = task_pb2.Task(phase_id=phase.id, name=name, **values)  # type: ignore[arg-type]
    return api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task))


def _account(api: SimpleNamespace, email: str, provider: str = "capped", cap: int = 0) -> account_pb2.Account:
    account = account_pb2.Account(email=email, provider=provider, max_concurrent_agents=cap)
    return api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))


def _next(api: SimpleNamespace, provider: str = "capped") -> str:
    request = account_pb2.GetNextAvailableAccountRequest(provider=provider)
    return str(api.accounts.GetNextAvailableAccount(request).id)


def _live_agent(api: SimpleNamespace, name: str, task_id: str, account_id: str) -> agent_pb2.Agent:
    agent = agent_pb2.Agent(
        name=name, task_id=task_id, worktree_id="wt", account_id=account_id, status=agent_pb2.AGENT_STATUS_RUNNING
    )
    change = event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=agent))
    return api.events.AppendEvent(event_pb2.AppendEventRequest(changes=[change])).rows[0].agent


def _set_agent_status(api: SimpleNamespace, agent_id: str, status: agent_pb2.AgentStatus.ValueType) -> None:
    api.agents.UpdateAgent(
        agent_pb2.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent_id, status=status), update_mask=field_mask_pb2.FieldMask(paths=["status"])
        )
    )


def test_providers_are_stored_on_create_and_update_and_cleared(client_api: SimpleNamespace) -> None:
    api = client_api  # a person's tool sets them
    initiative = _initiative(api, provider="claude", fallback_providers=["codex", "gemini"])
    assert (initiative.provider, list(initiative.fallback_providers)) == ("claude", ["codex", "gemini"])
    task = _task(api, initiative.id, "t", provider="codex")
    assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task.id)).provider == "codex"

    reordered = api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative_pb2.Initiative(id=initiative.id, fallback_providers=["gemini", "opencode", "codex"]),
            update_mask=field_mask_pb2.FieldMask(paths=["fallback_providers"]),
        )
    )
    assert list(reordered.fallback_providers) == ["gemini", "opencode", "codex"]
    assert reordered.provider == "claude"
    cleared = api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative_pb2.Initiative(id=initiative.id),
            update_mask=field_mask_pb2.FieldMask(paths=["provider", "fallback_providers"]),
        )
    )
    assert (cleared.provider, list(cleared.fallback_providers)) == ("", [])
    untied = api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id), update_mask=field_mask_pb2.FieldMask(paths=["provider"])
        )
    )
    assert untied.provider == ""


@pytest.mark.parametrize(
    ("names", "field", "words"),
    [
        (["codex", "codex"], "initiative.fallback_providers[1]", "named twice"),
        (["codex", ""], "initiative.fallback_providers[1]", "must not be empty"),
        (["co dex"], "initiative.fallback_providers[0]", "no provider name"),
        (["x" * 201], "initiative.fallback_providers[0]", "at most 200 characters"),
        ([f"p{i}" for i in range(MAX_FALLBACK_PROVIDERS + 1)], "initiative.fallback_providers", "at most 16"),
    ],
)
def test_bad_fallback_providers_are_refused_naming_the_field(
    client_api: SimpleNamespace, names: list[str], field: str, words: str
) -> None:
    initiative = initiative_pb2.Initiative(name="bad", fallback_providers=names)
    error = call_error(
        client_api.initiatives.CreateInitiative, initiative_pb2.CreateInitiativeRequest(initiative=initiative)
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.message and words in error.message, error.message
    listed = client_api.initiatives.ListInitiatives(initiative_pb2.ListInitiativesRequest(page_size=10)).initiatives
    assert list(listed) == []


def test_a_bad_provider_name_or_cap_is_refused(client_api: SimpleNamespace) -> None:
    initiative = _initiative(client_api)
    phase = client_api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="p"))
    )
    spaced = task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="t", provider="two words"))
    error = call_error(client_api.tasks.CreateTask, spaced)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "task.provider" in error.message
    update = initiative_pb2.UpdateInitiativeRequest(
        initiative=initiative_pb2.Initiative(id=initiative.id, provider="tab\there"),
        update_mask=field_mask_pb2.FieldMask(paths=["provider"]),
    )
    assert "initiative.provider" in call_error(client_api.initiatives.UpdateInitiative, update).message
    negative = account_pb2.Account(email="n@x", max_concurrent_agents=-1)
    error = call_error(client_api.accounts.CreateAccount, account_pb2.CreateAccountRequest(account=negative))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "max_concurrent_agents" in error.message


def test_an_account_at_its_cap_is_not_handed_out_until_an_agent_ends(api: SimpleNamespace) -> None:
    capped = _account(api, "one@x", cap=1)
    initiative = _initiative(api)
    first, second = _task(api, initiative.id, "first"), _task(api, initiative.id, "second")
    assert _next(api) == capped.id
    running = _live_agent(api, "runner", first.id, capped.id)
    error = call_error(
        api.accounts.GetNextAvailableAccount, account_pb2.GetNextAvailableAccountRequest(provider="capped")
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    # Waiting for input still holds the slot; ending frees it.
    _set_agent_status(api, running.id, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
    assert call_error(
        api.accounts.GetNextAvailableAccount, account_pb2.GetNextAvailableAccountRequest(provider="capped")
    )
    _set_agent_status(api, running.id, agent_pb2.AGENT_STATUS_STOPPED)
    assert _next(api) == capped.id
    _live_agent(api, "next", second.id, capped.id)


def test_the_least_used_account_below_its_cap_is_handed_out_and_no_cap_means_none(api: SimpleNamespace) -> None:
    capped, free = _account(api, "capped@x", cap=1), _account(api, "free@x")
    initiative = _initiative(api)
    tasks = [_task(api, initiative.id, f"t{i}") for i in range(4)]
    assert _next(api) == capped.id
    _live_agent(api, "on-capped", tasks[0].id, capped.id)
    # The capped account is at its cap: the other one, again and again, whatever its agents.
    for index, task in enumerate(tasks[1:]):
        assert _next(api) == free.id
        _live_agent(api, f"on-free-{index}", task.id, free.id)


def test_a_write_that_makes_an_agent_live_past_its_accounts_cap_is_refused(api: SimpleNamespace) -> None:
    """Two orchestrators both took the last slot (GetNextAvailableAccount answered each before
    either wrote its agent): the second agent's write is refused, NOT_READY, and writes nothing."""
    capped = _account(api, "race@x", cap=1)
    initiative = _initiative(api)
    first, second = _task(api, initiative.id, "first"), _task(api, initiative.id, "second")
    _live_agent(api, "winner", first.id, capped.id)
    agent = agent_pb2.Agent(
        name="loser", task_id=second.id, worktree_id="wt", account_id=capped.id, status=agent_pb2.AGENT_STATUS_RUNNING
    )
    start = event_pb2.AppendEventRequest(
        changes=[event_pb2.StateChange(create_agent=agent_pb2.CreateAgentRequest(agent=agent))]
    )
    head = api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence
    error = call_error(api.events.AppendEvent, start)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_READY")
    assert "runs at most 1 agent(s) at once" in error.message and "'winner' (RUNNING)" in error.message
    assert api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence == head
    # A stopped agent made live again counts too (a chat's next turn on the same account).
    earlier = agent_pb2.Agent(
        name="earlier", task_id=second.id, worktree_id="wt", account_id=capped.id, status=agent_pb2.AGENT_STATUS_STOPPED
    )
    stopped = api.agents.CreateAgent(agent_pb2.CreateAgentRequest(agent=earlier))
    again = agent_pb2.UpdateAgentRequest(
        agent=agent_pb2.Agent(id=stopped.id, status=agent_pb2.AGENT_STATUS_RUNNING),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )
    assert call_error(api.agents.UpdateAgent, again).reason == "NOT_READY"
    raise_cap = account_pb2.UpdateAccountRequest(
        account=account_pb2.Account(id=capped.id, max_concurrent_agents=2),
        update_mask=field_mask_pb2.FieldMask(paths=["max_concurrent_agents"]),
    )
    assert api.accounts.UpdateAccount(raise_cap).max_concurrent_agents == 2
    assert api.agents.UpdateAgent(again).status == agent_pb2.AGENT_STATUS_RUNNING
