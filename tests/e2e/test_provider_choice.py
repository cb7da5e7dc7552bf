"""Providers (README.md, "Providers, fallback and an account's cap"), end to end with scripted
providers: which provider a task runs on (its own,
its initiative's, the default), fallback to the next provider when every account of one rests, and
an account's cap on agents at once. Set up through `cw` as a person would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, phase_pb2, task_pb2
from tests.e2e.cluster import SCRIPTED, Cluster, cluster, script, wait_for
from tests.web.support import web_server
from tests.web.test_usage_pages import text_of

COMPLETED = task_pb2.TASK_STATUS_COMPLETED


def _credentials(c: Cluster) -> str:
    path = c.root / "credentials.json"
    path.write_text("{}")
    return str(path)


def _initiative(c: Cluster, name: str, *options: str) -> str:
    project = c.project(name.lower().replace(" ", "-"))
    created = c.cw_json("initiative", "create", name, "--project", project.id, *options)
    return str(created["id"])


def _phase(c: Cluster, initiative_id: str) -> phase_pb2.Phase:
    return phase_pb2.Phase(id=str(c.cw_json("phase", "add", initiative_id, "P")["id"]), initiative_id=initiative_id)


def _task(c: Cluster, phase: phase_pb2.Phase, name: str, *options: str, **plan: Any) -> str:
    created = c.cw_json("task", "add", phase.id, name, "--description", script(**plan), *options)
    return str(created["id"])


def _approve(c: Cluster, phase: phase_pb2.Phase) -> None:
    c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)


def _with_reason(c: Cluster, task_id: str, start: str = "") -> task_pb2.Task | None:
    """The task once its reason (starting so) is there."""
    task = c.get_task(task_id)
    return task if task.reason and task.reason.startswith(start) else None


def _providers(c: Cluster, task_id: str) -> list[str]:
    return [agent.provider for agent in c.agents_of(task_id)]


def test_a_rate_limit_on_the_only_account_moves_a_task_that_allows_it_to_the_next_provider(tmp_path: Path) -> None:
    release = tmp_path / "release"
    providers = [f"scripted={SCRIPTED}", f"spare={SCRIPTED}"]
    with cluster(tmp_path, providers=providers) as c:
        account = c.cw_json(
            "account", "add", "only@example.com", "--provider", "scripted", "--credentials-file", _credentials(c)
        )
        initiative_id = _initiative(c, "Falls back", "--fallback-provider", "spare")
        assert c.cw_json("initiative", "show", initiative_id)["initiative"]["fallbackProviders"] == ["spare"]
        phase = _phase(c, initiative_id)
        task_id = _task(c, phase, "limited", rate_limited_times=1, retry_wait_for=str(release), files={"l.txt": "l"})
        _approve(c, phase)

        moved = wait_for(
            "the task to run on the spare provider", lambda: _providers(c, task_id) == ["scripted", "spare"]
        )
        assert moved
        first, second = c.agents_of(task_id)
        assert (first.account_id, second.account_id) == (account["id"], "")  # spare needs no account
        running = c.get_task(task_id)
        assert (running.status, running.retry_count) == (task_pb2.TASK_STATUS_IN_PROGRESS, 0)  # no attempt spent
        assert running.reason.startswith(
            "moved from provider scripted to spare: every account of scripted is resting until"
        )
        items = [item for item in c.cw_json("inbox") if item["kind"] == "provider moved"]
        assert [item["id"] for item in items] == [task_id] and items[0]["detail"] == running.reason
        dispatched = [e for e in c.events() if e.type == "task:dispatched" and e.task_id == task_id]
        assert [e.details["provider"] for e in dispatched] == ["scripted", "spare"]
        assert dispatched[1].details["moved_from"] == "scripted"

        # An initiative without fallback providers waits for the account, no attempt spent.
        other_phase = _phase(c, _initiative(c, "Stays"))
        waiting_id = _task(c, other_phase, "waits", files={"w.txt": "w"})
        _approve(c, other_phase)
        waiting = wait_for(
            "the task without a fallback to wait, saying why",
            lambda: _with_reason(c, waiting_id, "every account of scripted is resting until"),
        )
        assert (waiting.status, c.agents_of(waiting_id)) == (task_pb2.TASK_STATUS_PENDING, [])

        release.touch()
        done = c.wait_task(task_id, COMPLETED)
        assert (done.retry_count, done.reason) == (0, "")
        assert [item for item in c.cw_json("inbox") if item["kind"] == "provider moved"] == []
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        c.assert_invariants()


def test_a_tasks_own_provider_wins_over_its_initiatives_and_the_default(tmp_path: Path) -> None:
    providers = [f"scripted={SCRIPTED}", f"alpha={SCRIPTED}", f"beta={SCRIPTED}"]
    with cluster(tmp_path, providers=providers) as c:
        chosen = _initiative(c, "Chosen", "--provider", "alpha")
        phase = _phase(c, chosen)
        inherits = _task(c, phase, "inherits", files={"a.txt": "a"})
        own = _task(c, phase, "own", "--provider", "beta", files={"b.txt": "b"})
        unknown = _task(c, phase, "unknown", "--provider", "nosuch", files={"n.txt": "n"})
        plain_phase = _phase(c, _initiative(c, "Plain"))
        default = _task(c, plain_phase, "default", files={"d.txt": "d"})
        _approve(c, phase)
        _approve(c, plain_phase)
        for task_id in (inherits, own, default):
            c.wait_task(task_id, COMPLETED)
        assert (_providers(c, inherits), _providers(c, own), _providers(c, default)) == (
            ["alpha"],
            ["beta"],
            ["scripted"],
        )
        assert c.cw_json("task", "show", own)["task"]["provider"] == "beta"

        stuck = wait_for("the unknown provider's reason", lambda: _with_reason(c, unknown))
        assert stuck.status == task_pb2.TASK_STATUS_PENDING and c.agents_of(unknown) == []
        assert "'nosuch' is not known to this orchestrator" in stuck.reason
        assert [item["id"] for item in c.cw_json("inbox") if item["kind"] == "unknown provider"] == [unknown]
        c.cw("task", "edit", unknown, "--provider", "beta")
        assert c.wait_task(unknown, COMPLETED).retry_count == 0
        assert _providers(c, unknown) == ["beta"]
        c.assert_invariants()
        with web_server(c) as web, httpx.Client(base_url=web.base, follow_redirects=True, timeout=30) as browser:
            assert browser.get(c.cw("web", "url", "--listen", web.service.address).stdout.strip()).status_code == 200
            assert "provider beta" in text_of(browser.get(f"/tasks/{own}").text)
            board = text_of(browser.get(f"/initiatives/{chosen}").text)
            assert "provider alpha · fallback none" in board
        ordered = c.cw_json(
            "initiative", "update", chosen, "--fallback-provider", "beta", "--fallback-provider", "scripted"
        )
        assert (ordered["provider"], ordered["fallbackProviders"]) == ("alpha", ["beta", "scripted"])
        cleared = c.cw_json("initiative", "update", chosen, "--provider", "", "--no-fallback")
        assert "provider" not in cleared and "fallbackProviders" not in cleared
        refused = c.cw(
            "initiative", "update", chosen, "--fallback-provider", "beta", "--fallback-provider", "beta", check=False
        )
        assert refused.returncode != 0 and "named twice" in refused.stderr


def test_an_account_capped_at_one_never_runs_two_agents_at_once(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with cluster(tmp_path) as c:
        account = c.cw_json(
            "account",
            "add",
            "one@example.com",
            "--provider",
            "scripted",
            "--credentials-file",
            _credentials(c),
            "--max-agents",
            "1",
        )
        assert account["maxConcurrentAgents"] == 1
        phase = _phase(c, _initiative(c, "Capped"))
        tasks = [_task(c, phase, name, wait_for=str(release), files={f"{name}.txt": name}) for name in ("a", "b")]
        _approve(c, phase)
        wait_for("one agent to run", lambda: sum(len(c.agents_of(t)) for t in tasks) == 1)
        holding = next(t for t in tasks if c.agents_of(t))
        waiting = next(t for t in tasks if t != holding)
        reason = wait_for("the other task's reason", lambda: c.get_task(waiting).reason)
        assert "waiting for a free account of provider 'scripted'" in reason
        assert c.get_task(waiting).status == task_pb2.TASK_STATUS_PENDING and c.agents_of(waiting) == []

        release.touch()
        for task_id in tasks:
            c.wait_task(task_id, COMPLETED)
        events = c.events()
        stopped = next(e.sequence for e in events if e.type == "agent:stopped" and e.task_id == holding)
        started = next(e.sequence for e in events if e.type == "task:dispatched" and e.task_id == waiting)
        assert started > stopped, "the second agent started only once the first had ended"
        assert {a.account_id for t in tasks for a in c.agents_of(t)} == {account["id"]}
        listed = c.api.accounts.GetAccount(account_pb2.GetAccountRequest(id=account["id"]))
        assert listed.max_concurrent_agents == 1
        uncapped = c.cw_json("account", "update", account["id"], "--max-agents", "0")
        assert "maxConcurrentAgents" not in uncapped
        c.assert_invariants()
