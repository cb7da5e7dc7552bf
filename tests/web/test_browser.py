"""cw in a real headless Chromium: logging in from the printed link, a task going from pending to
done without a reload, the review loop on a phase's diff, planning proposals, an agent's question,
and the attacks (hostile diff and output lines, a cross-site post, no session)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from cw.store.v1 import agent_pb2, phase_pb2, proposal_pb2, task_pb2
from tests.e2e.cluster import Cluster, script, wait_for
from tests.web.support import WebServer

HOSTILE = '<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned = \'img\'">'
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


@contextmanager
def logged_in(browser: Browser, web: WebServer, c: Cluster) -> Iterator[tuple[BrowserContext, Page]]:
    """A browser context logged in with a fresh one-time link (`cw web url`)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(mint(web, c))
        expect(page.locator("h1")).to_have_text("Initiatives")
        yield context, page
    finally:
        context.close()


def mint(web: WebServer, c: Cluster) -> str:
    """A new one-time link, as a person makes it: `cw web url`."""
    return c.cw("web", "url", "--listen", web.service.address).stdout.strip()


def shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def never_ran_script(page: Page) -> None:
    assert page.evaluate("() => window.__pwned === undefined"), "a hostile text ran as script"


def test_login_from_the_printed_link_once(browser: Browser, web: WebServer, screenshots: Path) -> None:
    printed = web.printed_login_url()
    first = browser.new_context()
    page = first.new_page()
    page.goto(printed)
    expect(page.locator("h1")).to_have_text("Initiatives")
    cookie = next(c for c in first.cookies() if c["name"] == "cw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    shot(page, screenshots, "home")
    page.click("nav button")  # log out
    expect(page.locator("h1")).to_have_text("Log in to cw")
    shot(page, screenshots, "login")
    page.goto(f"{web.base}/")
    assert page.url.endswith("/login")
    first.close()
    again = browser.new_context()
    replayed = again.new_page()
    answer = replayed.goto(printed)
    assert answer is not None and answer.status == 403
    expect(replayed.locator("#refusal")).to_contain_text("used")
    again.close()


def test_no_session_shows_no_data(browser: Browser, web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Secret plans", c.project("secret"))
    phase = c.phase(initiative, "Hidden phase")
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", f"/initiatives/{initiative.id}", f"/phases/{phase.id}", f"/phases/{phase.id}/diff", "/inbox"):
        page.goto(web.base + path)
        assert page.url == f"{web.base}/login", path
        assert "Secret plans" not in page.content() and "Hidden phase" not in page.content()
    answer = page.request.post(f"{web.base}/act/approve/{phase.id}", form={"csrf": "guess"})
    assert answer.status == 401
    assert c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING
    context.close()


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site: a page whose form posts to cw's approve action by itself."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}"><input name="csrf" value="guess"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_cross_site_form_post_is_refused(browser: Browser, web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Cross-site", c.project("cross"))
    phase = c.phase(initiative, "Not yours to approve")
    _Attacker.target = f"{web.base}/act/approve/{phase.id}"
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    try:
        with logged_in(browser, web, c) as (_, page):
            with page.expect_response(lambda r: "/act/approve/" in r.url) as posted:
                page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
            assert posted.value.status == 403
            expect(page.locator("body")).to_contain_text("refused")
    finally:
        attacker.shutdown()
        thread.join(10)
    assert c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_PENDING


def test_a_task_goes_from_pending_to_done_without_a_reload(
    browser: Browser, web: WebServer, services: Cluster, screenshots: Path, tmp_path: Path
) -> None:
    c = services
    initiative = c.initiative("Live board", c.project("live"))
    phase = c.phase(initiative, "Build")
    release = services.state_dir / "release"  # where agents see it inside their sandbox
    task = c.task(phase, "Write it", files={"it.txt": "it\n"}, wait_for=str(release), summary="wrote it.txt")
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/tasks/{task.id}")
        expect(page.locator("#task-status")).to_have_text("pending")
        expect(page.locator("#live-state")).to_have_text("live")
        page.evaluate("() => { window.__sameDocument = true; }")
        c.approve(phase)
        expect(page.locator("#task-status")).to_have_text("in_progress")
        release.write_text("go")
        expect(page.locator("#task-status")).to_have_text("completed")
        expect(page.locator("#summary")).to_have_text("wrote it.txt")
        expect(page.locator("#output")).to_contain_text("attempt 1")  # its agent's output, followed once it started
        assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
        shot(page, screenshots, "task")
        page.goto(f"{web.base}/initiatives/{initiative.id}")
        expect(page.locator(f"#task-{task.id} [data-status]")).to_have_text("completed")
        shot(page, screenshots, "initiative")


def test_review_loop_in_the_diff_and_hostile_lines_stay_text(
    browser: Browser, web: WebServer, services: Cluster, screenshots: Path, tmp_path: Path
) -> None:
    c = services
    initiative = c.initiative("Reviewed", c.project("reviewed"))
    phase = c.phase(initiative, "Review me")
    content = "def greet():\n    return 'hi'\n" + HOSTILE + "\n"
    work = c.task(phase, "Greet", files={"greet.py": content, "notes.txt": "one\ntwo\n"}, say=HOSTILE)
    c.approve(phase)
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/phases/{phase.id}/diff")
        greet = page.locator('details.file[data-path="greet.py"]')
        expect(greet.locator("tr.line").nth(2)).to_contain_text("<script>")
        expect(greet.locator("tr.line").nth(2)).to_contain_text("onerror=")
        assert greet.locator("img").count() == 0 and page.locator("main script").count() == 0
        never_ran_script(page)
        shot(page, screenshots, "diff")

        page.locator('details.file[data-path="notes.txt"] tr.line[data-line="2"] td.num.new').click()
        page.fill("#comment-form textarea", "two of what?")
        with page.expect_navigation():
            page.click("#comment-form button")
        page.reload()
        comment = page.locator('details.file[data-path="notes.txt"] tr.line[data-line="2"] + tr.comment')
        expect(comment).to_contain_text("two of what?")
        shot(page, screenshots, "diff-comment")
        (stored,) = c.cw_json("review", "list", phase.id)
        assert (stored["filePath"], stored["lineNumber"]) == ("notes.txt", 2)
        page.click("text=side by side")
        expect(page.locator("table.diff.split").first).to_be_visible()
        shot(page, screenshots, "diff-split")

        hostile_output_stays_text(page, web, c.agents_of(work.id)[0].id, screenshots)

        release = services.state_dir / "release-revision"
        revised = {"notes.txt": "one\ntwo apples\n"}
        c.plan_for_initiative(initiative.id, files=revised, resolved_comments=[stored["id"]], wait_for=str(release))
        page.goto(f"{web.base}/phases/{phase.id}/diff")
        page.click('button[data-action="request-changes"]')
        expect(page.locator("#phase-head [data-status]").first).to_have_text("in_progress")
        revision = page.locator("#tasks tr", has_text="in_progress")
        expect(revision).to_have_count(1)
        release.write_text("go")
        expect(page.locator("#phase-head [data-status]").first).to_have_text("pending_review")
        shot(page, screenshots, "phase")
        page.goto(f"{web.base}/phases/{phase.id}/diff")
        expect(page.locator("#resolved")).to_contain_text("two of what?")
        page.click('button[data-action="merge"]')
        expect(page.locator("#phase-status [data-status]")).to_have_text("completed")
        deliver_from_the_board(page, web, initiative.id, screenshots)
    assert c.get_phase(phase.id).status == phase_pb2.PHASE_STATUS_COMPLETED


def deliver_from_the_board(page: Page, web: WebServer, initiative_id: str, screenshots: Path) -> None:
    page.goto(f"{web.base}/initiatives/{initiative_id}/diff")
    expect(page.locator("#file-list")).to_contain_text("notes.txt")
    shot(page, screenshots, "initiative-diff")
    page.goto(f"{web.base}/initiatives/{initiative_id}")
    page.click('button[data-action="deliver"]')
    expect(page.locator(f'h1 [data-status-of="{initiative_id}"]')).to_have_text("completed")


def hostile_output_stays_text(page: Page, web: WebServer, agent_id: str, screenshots: Path) -> None:
    page.goto(f"{web.base}/agents/{agent_id}")
    expect(page.locator("#output")).to_contain_text("onerror=")
    expect(page.locator("#output")).to_contain_text("<script>")
    assert page.locator("#output img, #output script").count() == 0
    expect(page.locator("#output")).to_have_attribute("data-finished", "yes")  # no reconnecting
    never_ran_script(page)
    shot(page, screenshots, "agent")


PROPOSED = [
    {"key": "p1", "target_type": "phase", "title": "Schema"},
    {"key": "t1", "target_type": "task", "title": "Users table", "phase": "p1"},
    {"key": "t2", "target_type": "task", "title": "Sessions table", "phase": "p1"},
    {"key": "p2", "target_type": "phase", "title": "Frontend", "depends_on": ["p1"]},
]


def test_accept_part_of_a_plan_and_dismiss_the_rest(
    browser: Browser, web: WebServer, services: Cluster, screenshots: Path
) -> None:
    c = services
    initiative = c.initiative("Planned", c.project("planned"))
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/initiatives/{initiative.id}")
        instructions = f'form[action$="/plan/{initiative.id}"] textarea[name="instructions"]'
        page.fill(instructions, script(proposals=PROPOSED))
        page.click('button[data-action="plan"]')
        expect(page.locator("#task-status")).to_have_text("completed")
        page.goto(f"{web.base}/initiatives/{initiative.id}")
        tree = page.locator("#proposals")
        expect(tree.locator("li.proposal")).to_have_count(4)
        shot(page, screenshots, "proposals")
        by_title = {p.title: p for p in _proposals(c, initiative.id)}
        for title in ("Schema", "Users table"):
            page.check(f'input[value="{by_title[title].id}"]')
        page.click('button[value="accept"]')
        expect(tree.locator("li.proposal")).to_have_count(2)
        for title in ("Sessions table", "Frontend"):
            page.check(f'input[value="{by_title[title].id}"]')
        page.click('button[value="dismiss"]')
        expect(tree).to_contain_text("no pending proposals")
        statuses = {p.title: p.status for p in _proposals(c, initiative.id)}
        accepted, dismissed = proposal_pb2.PROPOSAL_STATUS_ACCEPTED, proposal_pb2.PROPOSAL_STATUS_DISMISSED
        assert statuses == {
            "Schema": accepted,
            "Users table": accepted,
            "Sessions table": dismissed,
            "Frontend": dismissed,
        }
        expect(page.locator(".phase h2")).to_have_text(["Schema pending"])
        page.click('#proposals button[data-action="revert"]')  # the accepted change set, undone
        expect(tree.locator("li.proposal")).to_have_count(2)
        expect(page.locator(".phase")).to_have_count(0)
    pending = proposal_pb2.PROPOSAL_STATUS_PENDING
    assert {p.title: p.status for p in _proposals(c, initiative.id)}["Users table"] == pending


def _proposals(c: Cluster, initiative_id: str) -> list[proposal_pb2.Proposal]:
    request = proposal_pb2.ListProposalsRequest(initiative_id=initiative_id)
    return list(c.api.proposals.ListProposals(request).proposals)


def test_answer_an_agents_question(browser: Browser, web: WebServer, services: Cluster, screenshots: Path) -> None:
    c = services
    initiative = c.initiative("Asked", c.project("asked"))
    phase = c.phase(initiative, "Ask")
    task = c.task(phase, "Ask me", questions=[{"id": "db", "question": "Which database <b>really</b>?"}])
    c.approve(phase)
    agent = wait_for(
        "the agent to ask",
        lambda: next((a for a in c.agents_of(task.id) if a.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT), None),
    )
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/inbox")
        expect(page.locator("#inbox")).to_contain_text(f"agent {agent.name} asks")
        shot(page, screenshots, "inbox")
        page.click(f'a[href="/agents/{agent.id}"]')
        expect(page.locator("#questions")).to_contain_text("Which database <b>really</b>?")
        shot(page, screenshots, "question")
        page.fill('textarea[name="answer:db"]', "PostgreSQL")
        page.click('button[data-action="answer"]')
        c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
        page.goto(f"{web.base}/accounts")
        shot(page, screenshots, "accounts")
    assert c.committed_answers(phase.id) == {"db": "PostgreSQL"}


def test_page_markdown_is_rendered_without_raw_html(
    browser: Browser, web: WebServer, services: Cluster, screenshots: Path
) -> None:
    c = services
    initiative = c.initiative("Documented", c.project("documented"))
    root = c.cw_json("page", "tree", initiative.id)[0]
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/pages/{root['id']}")
        page.click("details.edit summary")
        page.fill('textarea[name="content"]', f"# Idea\n\n*magic* links\n\n{HOSTILE}\n\n[x](javascript:alert(1))\n")
        page.click("details.edit form:first-of-type button")
        expect(page.locator("#rendered h1")).to_have_text("Idea")
        expect(page.locator("#rendered em")).to_have_text("magic")
        expect(page.locator("#rendered")).to_contain_text("<script>")
        assert page.locator("#rendered script, #rendered img, #rendered a[href^=javascript]").count() == 0
        never_ran_script(page)
        shot(page, screenshots, "page")
    assert json.loads(json.dumps(root))["id"]


def test_reply_to_a_message_and_retry_a_blocked_task(
    browser: Browser, web: WebServer, services: Cluster, screenshots: Path
) -> None:
    c = services
    initiative = c.initiative("Talked", c.project("talked"))
    phase = c.phase(initiative, "Talk")
    asking = c.task(phase, "asks", messages=[{"content": "sqlite <i>or</i> postgres?", "requires_response": True}])
    failing = c.task(phase, "fails", error_times=4)  # blocked after its attempts; the retry passes
    c.approve(phase)
    c.wait_task(failing.id, task_pb2.TASK_STATUS_BLOCKED)
    wait_for("the message", lambda: [m for a in c.agents_of(asking.id) for m in c.messages_from(a.id)])
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/inbox")
        message = page.locator("li.item-message")
        expect(message).to_contain_text("sqlite <i>or</i> postgres?")
        shot(page, screenshots, "inbox-message")
        message.locator('input[name="text"]').fill("postgres, please")
        message.locator("button").click()
        c.wait_task(asking.id, task_pb2.TASK_STATUS_COMPLETED)
        page.goto(f"{web.base}/tasks/{failing.id}")
        expect(page.locator("#reason")).to_contain_text("scripted error")
        page.click('button[data-action="retry"]')
        expect(page.locator("#task-status")).to_have_text("completed")


def test_a_big_file_of_a_diff_loads_when_opened(browser: Browser, web: WebServer, services: Cluster) -> None:
    c = services
    initiative = c.initiative("Big", c.project("bigdiff"))
    phase = c.phase(initiative, "Big")
    big = "".join(f"line {n}\n" for n in range(1, 1201))
    c.task(phase, "write", files={"a-big.txt": big, "b-small.txt": "small\n"})
    c.approve(phase)
    c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/phases/{phase.id}/diff")
        deferred = page.locator('details.file[data-path="a-big.txt"]')
        expect(deferred.locator("tr.line")).to_have_count(0)
        expect(page.locator('details.file[data-path="b-small.txt"] tr.line')).to_have_count(1)
        deferred.locator("summary").click()
        loaded = page.locator('details.file[data-path="a-big.txt"][data-loaded="yes"]')
        expect(loaded.locator("tr.line")).to_have_count(1200)
        loaded.locator('tr.line[data-line="1200"] td.num.new').click()
        page.fill("#comment-form textarea", "the last line")
        page.click("#comment-form button")
        expect(page.locator("body")).to_contain_text("Diff of Big")
    (comment,) = c.cw_json("review", "list", phase.id)
    assert (comment["filePath"], comment["lineNumber"]) == ("a-big.txt", 1200)


def test_chat_on_a_task_changes_it_and_the_change_reverts(browser: Browser, web: WebServer, services: Cluster) -> None:
    c = services
    phase = c.phase(c.initiative("Chatted", c.project("chatted")), "Polish")
    target = c.task(phase, "Original")
    edit = {"target_type": "task", "target_id": "$CW_TARGET_ID", "title": "Better name", "content": "Now better."}
    with logged_in(browser, web, c) as (_, page):
        page.goto(f"{web.base}/tasks/{target.id}")
        page.fill("form.chat-form textarea", f"Please rename it.\n{script(summary='renamed it', proposals=[edit])}")
        page.click("form.chat-form button")
        expect(page.locator("#chat-messages")).to_contain_text("renamed it")
        expect(page.locator("#task-head h1")).to_contain_text("Better name")
        page.click('#chat-messages button[data-action="revert"]')
        expect(page.locator("#task-head h1")).to_contain_text("Original")
    assert c.get_task(target.id).name == "Original"
