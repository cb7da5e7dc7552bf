"""A task created while its board is open is shown from its event, with no read of the whole
board: the board's event stream (`rows=tasks`) carries the new row, read with one GetTask and
escaped as the board's rows are; the page adds it without reading the board again."""

from __future__ import annotations

import json
from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from cw.store.v1 import event_pb2, task_pb2
from tests.e2e.cluster import Cluster
from tests.web.support import WebServer
from tests.web.test_browser import HOSTILE, logged_in, never_ran_script
from tests.web.test_http import session


def _created(client: httpx.Client, head: int, scope: str, rows: str, task_id: str) -> dict[str, Any]:
    """The stream's message for `task_id`'s `task:created`."""
    url = f"/live/events?after={head}&initiative={scope}&rows={rows}"
    with client.stream("GET", url, headers={"accept": "text/event-stream"}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event["type"] == "task:created" and event["entity_id"] == task_id:
                    return dict(event)
    raise AssertionError("the stream ended before the task's event")


def test_a_boards_stream_carries_a_created_tasks_row_escaped(web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Rows", c.project("rows"))
    phase = c.phase(initiative, "Rows phase")
    head = c.api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence
    added = c.task(phase, HOSTILE)
    planning = c.api.tasks.CreateTask(
        task_pb2.CreateTaskRequest(task=task_pb2.Task(initiative_id=initiative.id, name="a planning run"))
    )
    with session(web, c) as (client, _):
        sent = _created(client, head, initiative.id, "tasks", added.id)
        assert sent["phase_id"] == phase.id
        assert f'<li class="task" id="task-{added.id}">' in sent["row"]
        assert "&lt;script&gt;" in sent["row"] and "<script>" not in sent["row"] and "<img" not in sent["row"]
        assert "row" not in _created(client, head, initiative.id, "tasks", planning.id)  # not on a phase's board
        assert "row" not in _created(client, head, initiative.id, "", added.id)  # a page that did not ask


def test_a_task_created_shows_on_an_open_board_from_its_event(
    browser: Browser, web: WebServer, services: Cluster
) -> None:
    c = services
    initiative = c.initiative("Open board", c.project("open-board"))
    phase = c.phase(initiative, "Growing")
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/initiatives/{initiative.id}")
        expect(page.locator("#live-state")).to_have_text("live")
        expect(page.locator(f"#phase-{phase.id} li.dim")).to_have_text("no tasks")
        added = c.task(phase, HOSTILE)
        row = page.locator(f"#task-{added.id}")
        expect(row.locator("a")).to_have_text(HOSTILE)  # the name as text
        expect(row.locator("[data-status]")).to_have_text("pending")
        # Added from the event, before the board was read again (which would have found it there).
        assert page.evaluate("() => document.body.dataset.rowsShown") == "1"
        expect(page.locator(f"#phase-{phase.id} li.dim")).to_have_count(0)
        expect(page.locator("#board")).to_contain_text("0/1 tasks done")  # then the board read again
        never_ran_script(page)
