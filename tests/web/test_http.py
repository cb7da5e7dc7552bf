"""The web server's edge over plain HTTP: headers, CSRF, forged links, a plaintext listener beyond
loopback, and the event stream resumed with Last-Event-ID (nothing lost, nothing twice)."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from google.protobuf import field_mask_pb2

from clients.local import start, stop
from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, phase_pb2, proposal_pb2, task_pb2
from tests.e2e.cluster import Cluster, script, wait_for
from tests.e2e.test_auth_processes import _self_signed_pair
from tests.web.support import WebServer


@contextmanager
def session(web: WebServer, c: Cluster) -> Iterator[tuple[httpx.Client, str]]:
    """A client logged in through `cw web url`, and its CSRF token (read from a page)."""
    link = c.cw("web", "url", "--listen", web.service.address).stdout.strip()
    with httpx.Client(base_url=web.base, follow_redirects=True, timeout=30) as client:
        home = client.get(link)
        assert home.status_code == 200 and "Initiatives" in home.text
        found = re.search(r'data-csrf="([^"]+)"', home.text)
        assert found
        yield client, found.group(1)


def test_every_answer_carries_a_policy_without_inline_script(web: WebServer, services: Cluster) -> None:
    with session(web, services) as (client, _):
        for path in ("/", "/inbox", "/accounts", "/login", "/static/cw.js"):
            answer = client.get(path)
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
            assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_post_without_the_sessions_csrf_token_does_nothing(web: WebServer, services: Cluster) -> None:
    c = services
    phase = c.phase(c.initiative("Guarded", c.project("guarded")), "Guarded phase")
    with session(web, c) as (client, csrf):
        for given in ({}, {"csrf": "wrong"}, {"csrf": csrf[:-1]}):
            assert client.post(f"/act/approve/{phase.id}", data=given).status_code == 403
        assert c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING
        done = client.post(f"/act/approve/{phase.id}", data={"csrf": csrf, "back": "//evil.example/"})
        assert done.status_code == 200 and str(done.url) == f"{web.base}/"  # back: a path here only
    assert c.get_phase(phase.id).status != phase_pb2.PHASE_STATUS_PENDING


def test_forged_and_replayed_links_open_nothing(web: WebServer, services: Cluster) -> None:
    link = services.cw("web", "url", "--listen", web.service.address).stdout.strip()
    nonce, expiry, signature = link.split("token=")[1].split(".")
    with httpx.Client(base_url=web.base, timeout=30) as client:
        forged = client.get(f"/login?token={nonce}.{int(expiry) + 86400}.{signature}")
        assert forged.status_code == 403 and "cw_session" not in forged.cookies
        assert client.get(link).status_code == 303
        assert client.get(link).status_code == 403
        assert client.post("/login", data={"client_token": "guess"}).status_code == 403
        token = services.client_token_file.read_text().strip()
        assert client.post("/login", data={"client_token": token}).status_code == 303


def test_listening_beyond_loopback_needs_tls_or_insecure(services: Cluster) -> None:
    env = {**services.client_env(), "CW_WEB": "0.0.0.0:0"}
    refused = subprocess.run(
        [sys.executable, "-m", "clients.web"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert refused.returncode == 1 and "without TLS" in refused.stderr


def _events(client: httpx.Client, after: int, last_event_id: str, count: int, scope: str) -> list[int]:
    """The sequences of the next `count` events the stream sends."""
    headers = {"accept": "text/event-stream", **({"last-event-id": last_event_id} if last_event_id else {})}
    sequences: list[int] = []
    with client.stream("GET", f"/live/events?after={after}&initiative={scope}", headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                sequences.append(json.loads(line.removeprefix("data: "))["sequence"])
                if len(sequences) == count:
                    break
    return sequences


def test_the_event_stream_resumes_from_last_event_id(web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Streamed", c.project("streamed"))
    phase = c.phase(initiative, "One")
    for name in ("a", "b", "c"):
        c.task(phase, name)
    with session(web, c) as (client, _):
        first = _events(client, 0, "", 3, initiative.id)
        resumed = _events(client, 0, str(first[-1]), 2, initiative.id)
        everything = _events(client, 0, "", 5, initiative.id)
    assert first + resumed == everything and len(set(everything)) == 5


def test_a_board_shown_again_shows_every_change_since(web: WebServer, services: Cluster) -> None:
    """The board is kept between views (clients/web/boards.py): a change of any kind it shows,
    a dependency's too (the store scopes those to a task, not the initiative), is read again."""
    c = services
    initiative = c.initiative("Kept board", c.project("kept"))
    phase = c.phase(initiative, "Kept")
    first, second = c.task(phase, "first"), c.task(phase, "second")
    with session(web, c) as (client, _):
        board = client.get(f"/initiatives/{initiative.id}").text
        assert "after:" not in board and client.get(f"/initiatives/{initiative.id}").text == board
        c.api.tasks.CreateTaskDependency(
            task_pb2.CreateTaskDependencyRequest(task_id=second.id, depends_on_task_id=first.id)
        )
        assert "after: first" in client.get(f"/initiatives/{initiative.id}").text
        c.api.tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(id=first.id, name="renamed"), update_mask=field_mask_pb2.FieldMask(paths=["name"])
            )
        )
        assert "renamed" in client.get(f"/initiatives/{initiative.id}").text
        added = c.task(phase, "third")
        assert f'id="task-{added.id}"' in client.get(f"/initiatives/{initiative.id}").text
        c.api.tasks.DeleteTask(task_pb2.DeleteTaskRequest(id=added.id))
        assert f'id="task-{added.id}"' not in client.get(f"/initiatives/{initiative.id}").text
        c.api.phases.UpdatePhase(
            phase_pb2.UpdatePhaseRequest(
                phase=phase_pb2.Phase(id=phase.id, name="Kept, renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        )
        assert "Kept, renamed" in client.get(f"/initiatives/{initiative.id}").text


def test_agent_output_resumes_from_last_event_id(web: WebServer, services: Cluster) -> None:
    c = services
    phase = c.phase(c.initiative("Talkative", c.project("talkative")), "Talk")
    task = c.task(phase, "talks", output_bytes=8192, say="é, twice é")
    c.approve(phase)
    c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
    (agent,) = c.agents_of(task.id)
    request = orchestrator_pb2.StreamAgentOutputRequest(agent_id=agent.id)
    whole = b"".join(chunk.data for chunk in c.orch.StreamAgentOutput(request, timeout=30))
    start = 100
    wanted = whole[start:].decode()
    received = ""
    with session(web, c) as (client, _):
        headers = {"accept": "text/event-stream", "last-event-id": str(start)}
        with client.stream("GET", f"/live/agents/{agent.id}/output", headers=headers) as stream:
            lines = stream.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    received += json.loads(line.removeprefix("data: "))
                    if len(received) >= len(wanted):
                        break
            rest = list(lines)  # the agent ended: the stream ends by itself, saying so
    assert received == wanted and "é, twice é" in received
    assert "event: finished" in rest


def test_served_over_tls_the_link_and_the_cookie_say_so(services: Cluster, tmp_path: Path) -> None:
    certificate, key = _self_signed_pair(tmp_path)
    arguments = ["--listen", "127.0.0.1:0", "--tls-cert", str(certificate), "--tls-key", str(key)]
    log = tmp_path / "web-tls.log"
    server = start("clients.web", arguments, log, env=services.client_env())
    try:
        link = WebServer(server, log).printed_login_url()
        assert link.startswith(f"https://{server.address}/login?token=")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(certificate)), timeout=30) as client:
            answer = client.get(link)
            assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()
    finally:
        stop(server)


def test_comments_resolved_reopened_deleted_and_an_agent_stopped(
    web: WebServer, services: Cluster, tmp_path: Path
) -> None:
    c = services
    phase = c.phase(c.initiative("Comments", c.project("comments")), "Commented")
    c.task(phase, "write", files={"a.txt": "one\ntwo\n"})
    held = c.task(phase, "held", wait_for=str(tmp_path / "never"))
    c.approve(phase)
    agent = wait_for("the held agent", lambda: next((a for a in c.agents_of(held.id) if a.pid), None))
    # A comment is refused on a line not in the diff: wait for the write to reach it.
    wait_for(
        "a.txt in the phase's diff", lambda: any("+++ b/a.txt" in p.unified_diff for p in c.diff(phase.id).projects)
    )
    with session(web, c) as (client, csrf):
        posted = client.post(
            f"/act/comment/{phase.id}", data={"csrf": csrf, "file": "a.txt", "line": "2", "body": "why?"}
        )
        assert posted.status_code == 200
        outside = client.post(
            f"/act/comment/{phase.id}", data={"csrf": csrf, "file": "a.txt", "line": "9", "body": "x"}
        )
        assert outside.status_code == 400 and "not in the phase&#39;s diff" in outside.text
        (comment,) = c.cw_json("review", "list", phase.id)
        for action, resolved in (("resolve", True), ("reopen", False)):
            assert client.post(f"/act/{action}/{comment['id']}", data={"csrf": csrf}).status_code == 200
            assert c.cw_json("review", "list", phase.id, "--all")[0].get("resolved", False) is resolved
        assert client.post(f"/act/delete-comment/{comment['id']}", data={"csrf": csrf}).status_code == 200
        assert c.cw_json("review", "list", phase.id, "--all") == []
        assert client.post(f"/act/stop/{agent.id}", data={"csrf": csrf}).status_code == 200
    wait_for("the agent stopped", lambda: c.agents_of(held.id)[0].outcome == agent_pb2.AGENT_OUTCOME_STOPPED)


def test_detail_a_phase_and_refine_a_page_from_their_pages(web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Detailed", c.project("detailed"))
    phase = c.phase(initiative, "Rough")
    steps = [{"key": "s1", "target_type": "task", "title": "First step", "phase": "$CW_TARGET_ID"}]
    root = c.cw_json("page", "tree", initiative.id)[0]
    edit = [{"target_type": "page", "target_id": "$CW_TARGET_ID", "title": root["title"], "content": "# Better\n"}]
    with session(web, c) as (client, csrf):
        for action, subject, proposals in (("detail", phase.id, steps), ("refine", root["id"], edit)):
            ran = client.post(
                f"/act/{action}/{subject}", data={"csrf": csrf, "instructions": script(proposals=proposals)}
            )
            assert ran.status_code == 200 and ran.url.path.startswith("/tasks/")
            c.wait_task(ran.url.path.removeprefix("/tasks/"), task_pb2.TASK_STATUS_COMPLETED)
    titles = {
        p.title
        for p in c.api.proposals.ListProposals(proposal_pb2.ListProposalsRequest(initiative_id=initiative.id)).proposals
    }
    assert titles == {"First step", root["title"]}
