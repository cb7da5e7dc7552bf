"""Usage over HTTP: /accounts shows each account's state and why (resting until
when, refused and why) and what its agents used; the task, phase and initiative pages show their
usage and budget, and a task a budget stopped says so. A cluster of its own: the accounts it
makes would change which account every other web test's agents run with."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from playwright.sync_api import Browser, expect

from clients.sdk import StoreClient
from cw.store.v1 import account_pb2, agent_pb2, agent_pb2_grpc, task_pb2
from cw_edge.tokens import Identity
from tests.e2e.cluster import Cluster, cluster, wait_for
from tests.web.support import WebServer, web_server
from tests.web.test_browser import logged_in, never_ran_script, shot

pytestmark = pytest.mark.timeout(240)

REFUSAL = "Invalid API key <script>alert(1)</script>"


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, WebServer]]:
    with cluster(tmp_path_factory.mktemp("usage-web")) as running, web_server(running) as server:
        yield running, server


@pytest.fixture(scope="module")
def client(own: tuple[Cluster, WebServer]) -> Iterator[httpx.Client]:
    c, web = own
    link = c.cw("web", "url", "--listen", web.service.address).stdout.strip()
    with httpx.Client(base_url=web.base, follow_redirects=True, timeout=30) as logged_in:
        assert logged_in.get(link).status_code == 200
        yield logged_in


def text_of(html: str) -> str:
    """A page's text as a person reads it: tags dropped, spaces folded (entities stay escaped)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _accounts(c: Cluster, store: StoreClient) -> dict[str, account_pb2.Account]:
    ready = store.create_account("ready@example.com", "scripted", "{}")
    resting = store.create_account("resting@example.com", "scripted", "{}")
    refused = store.create_account("refused@example.com", "scripted", "{}")
    until = Timestamp()
    until.FromDatetime(datetime.now(UTC) + timedelta(hours=3))
    resting = c.api.accounts.MarkAccountExhausted(account_pb2.MarkAccountExhaustedRequest(id=resting.id, until=until))
    refused = c.api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=refused.id, unusable_reason=REFUSAL),
            update_mask=field_mask_pb2.FieldMask(paths=["unusable_reason"]),
        )
    )
    return {"ready": ready, "resting": resting, "refused": refused}


@pytest.fixture(scope="module")
def ran(own: tuple[Cluster, WebServer]) -> Iterator[dict[str, str]]:
    """Two tasks run with the one usable account: one completes (its CLI reports its usage and
    cost), the other passes its budget in its first turn and is stopped, BLOCKED."""
    c, _ = own
    store = StoreClient(c.client_env()["CW_STORE"], token_file=c.client_token_file)
    accounts = _accounts(c, store)
    initiative = c.initiative("Metered", c.project("metered"))
    store.set_budget("initiative", initiative.id, 100_000, None)
    phase = c.phase(initiative, "Metered work")
    turn = {"input": 100, "output": 50, "cache_write": 10}
    done = c.task(phase, "reported", usage_turns=[turn], cost_usd=0.25, files={"a": "a"})
    never = c.root / "never-released"
    stopped = c.task(phase, "over budget", usage_turns=[{"input": 400, "output": 100, "wait_for": str(never)}])
    store.set_budget("task", stopped.id, 100, None)
    c.approve(phase)
    c.wait_task(done.id, task_pb2.TASK_STATUS_COMPLETED)
    c.wait_task(stopped.id, task_pb2.TASK_STATUS_BLOCKED)
    wait_for("the stopped run's usage", lambda: _settled(c, stopped.id))
    yield {
        "initiative": initiative.id,
        "phase": phase.id,
        "done": done.id,
        "stopped": stopped.id,
        **{name: account.id for name, account in accounts.items()},
    }
    store.close()


def _settled(c: Cluster, task_id: str) -> bool | None:
    agents = c.agents_of(task_id)
    return bool(agents and agents[0].status != agent_pb2.AGENT_STATUS_RUNNING and agents[0].usage.input_tokens) or None


def row(html: str, element_id: str) -> str:
    found = re.search(rf'<tr id="{element_id}">(.*?)</tr>', html, re.S)
    assert found, element_id
    return text_of(found.group(1))


def test_accounts_show_their_state_why_and_usage(client: httpx.Client, ran: dict[str, str]) -> None:
    page = client.get("/accounts")
    assert page.status_code == 200
    ready = row(page.text, f"account-{ran['ready']}")
    assert " ready " in ready
    # Both runs used the one usable account: 100 + 400 in, 50 + 100 out, the completed run's cost.
    assert "500 in, 150 out, 0 cache read, 10 cache write, $0.2500 · 2 agent runs" in ready
    resting = row(page.text, f"account-{ran['resting']}")
    assert " resting " in resting and "rate limited: rests until 20" in resting and "0 agent runs" in resting
    refused = row(page.text, f"account-{ran['refused']}")
    assert " unusable " in refused and "the provider refused its credentials" in refused
    assert "Invalid API key &lt;script&gt;alert(1)&lt;/script&gt;" in refused  # the provider's text, as text
    assert "<script>alert" not in page.text


def test_task_pages_show_usage_budget_and_a_budget_stop(client: httpx.Client, ran: dict[str, str]) -> None:
    done = text_of(client.get(f"/tasks/{ran['done']}").text)
    assert "usage: 100 in, 50 out, 0 cache read, 10 cache write, $0.2500 · 1 agent run" in done
    assert "budget:" not in done and "Stopped by its budget" not in done
    stopped_page = client.get(f"/tasks/{ran['stopped']}").text
    stopped = text_of(stopped_page)
    assert "usage: 400 in, 100 out, 0 cache read, 0 cache write, $0.0000 · 1 agent run" in stopped
    assert "budget: 500 of 100 tokens (spent)" in stopped
    assert 'id="budget-stop"' in stopped_page and "Stopped by its budget" in stopped
    assert f"cw budget task {ran['stopped']} --tokens N" in stopped


def test_phase_and_initiative_pages_show_usage_and_budget(client: httpx.Client, ran: dict[str, str]) -> None:
    summed = "usage: 500 in, 150 out, 0 cache read, 10 cache write, $0.2500 · 2 agent runs"
    phase = text_of(client.get(f"/phases/{ran['phase']}").text)
    assert summed in phase and "budget:" not in phase  # a phase has no budget of its own
    board = text_of(client.get(f"/initiatives/{ran['initiative']}").text)
    assert summed in board and "budget: 660 of 100,000 tokens" in board and "(spent)" not in board


def test_usage_shown_again_follows_a_raised_budget(
    own: tuple[Cluster, WebServer], client: httpx.Client, ran: dict[str, str]
) -> None:
    c, _ = own
    board = text_of(client.get(f"/initiatives/{ran['initiative']}").text)  # the board is kept now
    assert "of 100,000 tokens" in board and "Past its budget" not in board
    c.cw("budget", "initiative", ran["initiative"], "--tokens", "200")
    again = text_of(client.get(f"/initiatives/{ran['initiative']}").text)
    assert "budget: 660 of 200 tokens (spent)" in again and "Past its budget" in again
    assert f"cw budget initiative {ran['initiative']} --tokens N" in again


def test_in_the_browser_a_refusal_stays_text_and_a_budget_stop_shows(
    own: tuple[Cluster, WebServer], ran: dict[str, str], browser: Browser, screenshots: Path
) -> None:
    c, web = own
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/accounts")
        expect(page.locator(f"#account-{ran['refused']} td.why")).to_contain_text(REFUSAL)  # as text
        expect(page.locator(f"#account-{ran['resting']} [data-status]")).to_have_text("resting")
        expect(page.locator(f"#account-{ran['ready']} td.usage")).to_contain_text("2 agent runs")
        never_ran_script(page)
        shot(page, screenshots, "accounts-usage")
        page.goto(f"{web.base}/tasks/{ran['stopped']}")
        expect(page.locator("#budget-stop")).to_contain_text("Stopped by its budget")
        expect(page.locator("#task-usage")).to_contain_text("budget: 500 of 100 tokens (spent)")
        shot(page, screenshots, "task-budget")


def test_a_kept_board_sums_its_usage_again_when_an_agent_changed(
    own: tuple[Cluster, WebServer], client: httpx.Client, ran: dict[str, str]
) -> None:
    """The board is kept between views (clients/web/boards.py); an agent's usage written after it
    was kept (as the orchestrator writes it while the agent runs) is shown on the next view."""
    c, _ = own
    board = text_of(client.get(f"/initiatives/{ran['initiative']}").text)
    assert "usage: 500 in," in board
    (agent,) = c.agents_of(ran["done"])
    more = agent_pb2.Usage(input_tokens=1100, output_tokens=50, cache_write_tokens=10, cost_usd=0.25)
    assert c.store is not None
    as_the_orchestrator = agent_pb2_grpc.AgentServiceStub(c._channel(c.store.address, Identity.ORCHESTRATOR))
    as_the_orchestrator.UpdateAgent(
        agent_pb2.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, usage=more), update_mask=field_mask_pb2.FieldMask(paths=["usage"])
        )
    )
    again = text_of(client.get(f"/initiatives/{ran['initiative']}").text)
    assert "usage: 1,500 in, 150 out, 0 cache read, 10 cache write, $0.2500 · 2 agent runs" in again
