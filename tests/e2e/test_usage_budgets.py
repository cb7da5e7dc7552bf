"""Usage and budgets through the real services (README.md, "Usage and budgets"): scripted agents print
Claude Code's stream-json usage lines, one per turn; what the store keeps is exactly what they
reported; a task's budget passed mid-run stops the run within that turn, BLOCKs the task with the
budget as its reason, and once the budget is raised a retry resumes the same session with its work;
an initiative past its budget starts nothing until its budget is raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import field_mask_pb2

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, initiative_pb2, phase_pb2, task_pb2
from orchestrator_service.agents import process
from tests.e2e.cluster import SCRIPTED, Cluster, wait_for

pytestmark = pytest.mark.timeout(240)

# USD per million tokens of the scripted agent's model: the cost of a run that printed no result.
PRICES = {"claude-test": {"input": 2.0, "output": 10.0, "cache_read": 0.5, "cache_write": 4.0}}


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Cluster]:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    running = Cluster(tmp_path, [f"scripted={SCRIPTED}"], orchestrator_flags=["--prices", str(prices)])
    try:
        running.start_store()
        running.start_orchestrator()
        yield running
    finally:
        running.close()


def _budget_task(c: Cluster, phase: phase_pb2.Phase, budget_tokens: int, **plan: Any) -> task_pb2.Task:
    task = c.task(phase, "budgeted", **plan)
    return c.api.tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=task.id, budget_tokens=budget_tokens),
            update_mask=field_mask_pb2.FieldMask(paths=["budget_tokens"]),
        )
    )


def _usage(c: Cluster, scope: agent_pb2.UsageGroup.ValueType, key: str) -> orchestrator_pb2.UsageTotal:
    (total,) = c.orch.GetUsage(orchestrator_pb2.GetUsageRequest(scope=scope, id=key), timeout=10).totals
    return total


def test_a_task_past_its_budget_is_stopped_within_the_turn_and_resumed_once_raised(c: Cluster) -> None:
    release = c.root / "release-turn-3"
    initiative = c.initiative("Budgets", c.project())
    phase = c.phase(initiative, "work")
    turns = [
        {"input": 100, "output": 50, "cache_read": 1000, "cache_write": 10, "files": {"one.txt": "1\n"}},
        {"input": 200, "output": 100, "files": {"two.txt": "2\n"}, "wait_for": str(release)},
        {"input": 5000, "output": 5000},
    ]
    task = _budget_task(c, phase, 300, usage_turns=turns, resume_usage_turns=[{"input": 7, "output": 3}], cost_usd=0.25)
    c.approve(phase)
    blocked = c.wait_task(task.id, task_pb2.TASK_STATUS_BLOCKED)
    assert blocked.reason == "the task's budget is spent: 460 tokens used of 300"
    (agent,) = c.agents_of(task.id)
    assert agent.status == agent_pb2.AGENT_STATUS_STOPPED and "budget" in json.loads(agent.result)
    wait_for("the stopped agent's process to end", lambda: process.start_time(agent.pid) is None or None)
    release.touch()  # too late: the third turn never comes
    # Exactly the two turns it printed; no result line, so the cost is the price table's.
    first_cost = (300 * 2.0 + 150 * 10.0 + 1000 * 0.5 + 10 * 4.0) / 1_000_000
    recorded = wait_for("the final usage", lambda: _settled_usage(c, agent.id))
    assert (recorded.input_tokens, recorded.output_tokens) == (300, 150)
    assert (recorded.cache_read_tokens, recorded.cache_write_tokens) == (1000, 10)
    assert recorded.cost_usd == pytest.approx(first_cost)
    assert "turn 3" not in Path(agent.output_file_path).read_text()
    events = [e.type for e in c.events() if e.task_id == task.id]
    assert "task:blocked" in events
    (item,) = [item for item in c.cw_json("inbox") if item["id"] == task.id]
    assert item["kind"] == "budget" and item["detail"] == blocked.reason and "cw budget task" in item["command"]

    # Retried without raising the budget: it waits, with the reason, and starts nothing.
    c.orch.RetryBlockedTask(orchestrator_pb2.RetryBlockedTaskRequest(task_id=task.id), timeout=10)
    waiting = wait_for("the task to wait for its budget", lambda: _waiting_with_reason(c, task.id))
    assert waiting.reason.startswith("the task's budget is spent")
    assert len(c.agents_of(task.id)) == 1 and c.agents_of(task.id)[0].status == agent_pb2.AGENT_STATUS_STOPPED

    c.cw("budget", "task", task.id, "--tokens", "10000")
    c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
    (resumed,) = c.agents_of(task.id)
    assert resumed.id == agent.id and resumed.session_id == agent.session_id
    prompts = (c.state_dir / f"prompts-{task.id}.txt").read_text()
    assert "(resume 1, " in prompts
    resumed_prompt = prompts.split("(resume 1, ")[1]
    assert f"Your previous run was stopped: {blocked.reason}. The budget has been raised." in resumed_prompt
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    diff = "".join(project.unified_diff for project in c.diff(phase.id).projects)
    assert "+++ b/one.txt" in diff and "+++ b/two.txt" in diff  # the stopped run's work, kept
    final = c.agents_of(task.id)[0].usage
    assert (final.input_tokens, final.output_tokens, final.cache_read_tokens, final.cache_write_tokens) == (
        307,
        153,
        1000,
        10,
    )
    assert final.cost_usd == pytest.approx(first_cost + 0.25)  # the resumed run's result says 0.25
    total = _usage(c, agent_pb2.USAGE_GROUP_TASK, task.id)
    assert total.budget_tokens_used == 470 and total.budget_tokens == 10_000 and total.agent_count == 1
    assert _usage(c, agent_pb2.USAGE_GROUP_INITIATIVE, initiative.id).usage == final
    assert _usage(c, agent_pb2.USAGE_GROUP_PHASE, phase.id).usage == final
    assert _usage(c, agent_pb2.USAGE_GROUP_PROVIDER, "scripted").usage == final
    shown = c.cw_json("task", "show", task.id)
    assert shown["usage"] == {
        "inputTokens": "307",
        "outputTokens": "153",
        "cacheReadTokens": "1000",
        "cacheWriteTokens": "10",
        "costUsd": pytest.approx(first_cost + 0.25),
    }
    assert "470 of 10,000 tokens" in c.cw("task", "show", task.id).stdout
    (row,) = c.cw_json("usage", "--by", "task")
    assert row["id"] == task.id and row["budgetTokensUsed"] == "470"


def test_an_initiative_past_its_budget_starts_nothing_until_raised(c: Cluster) -> None:
    initiative = c.initiative("Spent", c.project())
    c.api.initiatives.UpdateInitiative(
        initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative_pb2.Initiative(id=initiative.id, budget_tokens=100),
            update_mask=field_mask_pb2.FieldMask(paths=["budget_tokens"]),
        )
    )
    phase = c.phase(initiative, "work")
    first = c.task(phase, "first", usage_turns=[{"input": 120, "output": 30, "cache_read": 9}], files={"a.txt": "a"})
    second = c.task(phase, "second", after=[first.id], files={"b.txt": "b"})
    c.approve(phase)
    c.wait_task(first.id, task_pb2.TASK_STATUS_COMPLETED)
    waiting = wait_for("the second task to wait for the budget", lambda: _waiting_with_reason(c, second.id))
    assert waiting.reason == "the initiative's budget is spent: 150 tokens used of 100"
    assert c.agents_of(second.id) == []
    (item,) = [item for item in c.cw_json("inbox") if item["kind"] == "budget"]
    assert item["id"] == initiative.id and item["detail"] == waiting.reason
    assert "150 of 100 tokens" in c.cw("initiative", "show", initiative.id).stdout
    (recorded,) = c.agents_of(first.id)
    assert (recorded.usage.input_tokens, recorded.usage.output_tokens, recorded.usage.cache_read_tokens) == (
        120,
        30,
        9,
    )
    c.cw("budget", "initiative", initiative.id, "--tokens", "1000")
    c.wait_task(second.id, task_pb2.TASK_STATUS_COMPLETED)
    total = _usage(c, agent_pb2.USAGE_GROUP_INITIATIVE, initiative.id)
    assert total.budget_tokens_used == 150 and total.budget_tokens == 1000 and total.agent_count == 2


def _settled_usage(c: Cluster, agent_id: str) -> agent_pb2.Usage | None:
    """The agent's usage once its process is gone and nothing more was read."""
    agent = c.api.agents.GetAgent(agent_pb2.GetAgentRequest(id=agent_id), timeout=10)
    return agent.usage if agent.usage.input_tokens == 300 else None


def _waiting_with_reason(c: Cluster, task_id: str) -> task_pb2.Task | None:
    task = c.get_task(task_id)
    return task if task.status == task_pb2.TASK_STATUS_PENDING and "budget" in task.reason else None


def test_usage_survives_an_orchestrator_killed_mid_run_and_is_counted_once(c: Cluster) -> None:
    """The restarted orchestrator reads the agent's output again from its start: the turns it had
    stored are not counted twice, the ones printed while it was down are not lost."""
    hold, killed = c.root / "hold", c.root / "killed"
    initiative = c.initiative("Restart", c.project())
    phase = c.phase(initiative, "work")
    turns = [
        {"input": 11, "output": 5, "cache_read": 3, "cache_write": 2, "wait_for": str(killed)},
        {"input": 13, "output": 7, "wait_for": str(hold)},
    ]
    task = c.task(phase, "restarted", usage_turns=turns, files={"r.txt": "r"})
    c.approve(phase)
    first = wait_for("the first turn stored", lambda: _agent_with_input(c, task.id, 11))
    assert c.orchestrator is not None
    c.orchestrator.kill()
    killed.touch()  # the second turn is printed while no orchestrator runs
    wait_for("the second turn printed", lambda: "turn 2" in Path(first.output_file_path).read_text() or None)
    c.start_orchestrator()
    wait_for("the second turn stored", lambda: _agent_with_input(c, task.id, 24))
    hold.touch()
    c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
    (agent,) = c.agents_of(task.id)
    used = agent.usage
    # The run's result line (the two turns summed) is what counts once it is printed.
    assert (used.input_tokens, used.output_tokens, used.cache_read_tokens, used.cache_write_tokens) == (24, 12, 3, 2)


def _agent_with_input(c: Cluster, task_id: str, input_tokens: int) -> agent_pb2.Agent | None:
    agents = c.agents_of(task_id)
    return agents[0] if agents and agents[0].usage.input_tokens == input_tokens else None
