"""Agents' usage and budgets in the store: stored as written, summed per task, phase, initiative,
account and provider by the database (SQLite and PostgreSQL), budgets kept and cleared, a
client unable to write usage."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from cw.store.v1 import account_pb2, agent_pb2, initiative_pb2, phase_pb2, task_pb2
from tests.support import call_error

USAGE_PATHS = ["usage"]


def _tree(api: SimpleNamespace) -> tuple[Any, Any, Any, Any]:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(
            initiative=initiative_pb2.Initiative(name="Usage", budget_tokens=5000, budget_usd=1.5)
        )
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="p"))
    )
    first = api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="one", budget_tokens=100))
    )
    second = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="two")))
    return initiative, phase, first, second


def _agent(api: SimpleNamespace, name: str, task: Any, owner: tuple[str, str], usage: agent_pb2.Usage) -> Any:
    account_id, provider = owner
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(
            agent=agent_pb2.Agent(
                name=name,
                worktree_id="w",
                task_id=task.id,
                initiative_id=task.initiative_id,
                account_id=account_id,
                provider=provider,
            )
        )
    )
    assert agent.usage == agent_pb2.Usage()
    return api.agents.UpdateAgent(
        agent_pb2.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, usage=usage), update_mask=field_mask_pb2.FieldMask(paths=USAGE_PATHS)
        )
    )


def test_usage_is_stored_as_written_and_summed_per_group(api: SimpleNamespace) -> None:
    initiative, phase, first, second = _tree(api)
    assert (initiative.budget_tokens, initiative.budget_usd, first.budget_tokens) == (5000, 1.5, 100)
    assert not second.HasField("budget_tokens")
    account = api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@example.com", provider="claude"))
    )
    big = agent_pb2.Usage(
        input_tokens=2**40, output_tokens=7, cache_read_tokens=11, cache_write_tokens=13, cost_usd=0.25
    )
    small = agent_pb2.Usage(input_tokens=1, output_tokens=2, cache_read_tokens=3, cache_write_tokens=4, cost_usd=0.5)
    one = _agent(api, "a-one", first, (account.id, "claude"), big)
    assert one.usage == big
    assert api.agents.GetAgent(agent_pb2.GetAgentRequest(id=one.id)).usage == big
    _agent(api, "a-two", first, ("", "mine"), small)
    _agent(api, "a-three", second, (account.id, "claude"), small)

    def sums(group: agent_pb2.UsageGroup.ValueType, **filters: str) -> dict[str, tuple[agent_pb2.Usage, int]]:
        answer = api.agents.SumAgentUsage(agent_pb2.SumAgentUsageRequest(group_by=group, **filters))
        return {row.key: (row.usage, row.agent_count) for row in answer.sums}

    both = agent_pb2.Usage(
        input_tokens=2**40 + 1, output_tokens=9, cache_read_tokens=14, cache_write_tokens=17, cost_usd=0.75
    )
    all_three = agent_pb2.Usage(
        input_tokens=2**40 + 2, output_tokens=11, cache_read_tokens=17, cache_write_tokens=21, cost_usd=1.25
    )
    assert sums(agent_pb2.USAGE_GROUP_TASK) == {first.id: (both, 2), second.id: (small, 1)}
    assert sums(agent_pb2.USAGE_GROUP_PHASE) == {phase.id: (all_three, 3)}
    assert sums(agent_pb2.USAGE_GROUP_INITIATIVE) == {initiative.id: (all_three, 3)}
    by_account = sums(agent_pb2.USAGE_GROUP_ACCOUNT)
    assert by_account[account.id][1] == 2 and by_account[""] == (small, 1)
    assert set(sums(agent_pb2.USAGE_GROUP_PROVIDER)) == {"claude", "mine"}
    assert sums(agent_pb2.USAGE_GROUP_UNSPECIFIED, task_id=first.id) == {"": (both, 2)}
    assert sums(agent_pb2.USAGE_GROUP_UNSPECIFIED, provider="mine", phase_id=phase.id) == {"": (small, 1)}
    assert sums(agent_pb2.USAGE_GROUP_TASK, initiative_id="nothing") == {}
    assert sums(agent_pb2.USAGE_GROUP_UNSPECIFIED, initiative_id="nothing") == {"": (agent_pb2.Usage(), 0)}


def test_budgets_are_cleared_with_the_mask(api: SimpleNamespace) -> None:
    _, _, first, _ = _tree(api)
    cleared = api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=first.id), update_mask=field_mask_pb2.FieldMask(paths=["budget_tokens"])
        )
    )
    assert not cleared.HasField("budget_tokens")


def test_a_client_cannot_write_usage(api: SimpleNamespace, client_api: SimpleNamespace) -> None:
    _, _, first, _ = _tree(api)
    agent = _agent(api, "a-one", first, ("", "claude"), agent_pb2.Usage(output_tokens=5))
    error = call_error(
        client_api.agents.UpdateAgent,
        agent_pb2.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, usage=agent_pb2.Usage(output_tokens=0)),
            update_mask=field_mask_pb2.FieldMask(paths=USAGE_PATHS),
        ),
    )
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    bad = call_error(api.agents.SumAgentUsage, agent_pb2.SumAgentUsageRequest(group_by=99))  # type: ignore[arg-type]
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
