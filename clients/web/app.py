"""The web server: pages at stable URLs, actions as CSRF-checked form posts, live updates as
server-sent events. Every page is a client of the two services through the SDK, as the CLI is.

Security, in one place: every request but the login, the logout and the static files needs a
session (no session: a page redirects to /login and shows nothing, a post is refused); every post
carries the session's CSRF token and, when the browser sends an Origin, it must be this server's;
every answer carries a Content-Security-Policy that allows no inline script; Jinja2 escapes every
text (autoescape), and markdown is rendered without raw HTML.
"""

from __future__ import annotations

import enum
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clients.sdk import CwError
from clients.sdk.calls import enum_name
from clients.sdk.credentials import read_client_token, token_path
from clients.web import actions, diffview, live, views
from clients.web.auth import SESSION_COOKIE, SESSION_TTL_SECONDS, Gate, WebSession, csrf_matches
from cw.store.v1 import (
    agent_pb2,
    chat_session_pb2,
    initiative_pb2,
    phase_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)

HERE = Path(__file__).parent
OPEN_PATHS = ("/login", "/logout", "/static/")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Refusal(enum.StrEnum):
    NO_SESSION = "no session: log in first"
    CROSS_SITE = "refused: a form posted from another site"
    BAD_CSRF = "refused: the form's CSRF token is missing or wrong (reload the page)"


def templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
    )
    environment.globals.update(
        when=views.when,
        status=views.status_of,
        TaskStatus=task_pb2.TaskStatus,
        PhaseStatus=phase_pb2.PhaseStatus,
        AgentStatus=agent_pb2.AgentStatus,
        AgentOutcome=agent_pb2.AgentOutcome,
        InitiativeStatus=initiative_pb2.InitiativeStatus,
        TaskCategory=task_pb2.TaskCategory,
        ProposalTargetType=proposal_pb2.ProposalTargetType,
        ProposalStatus=proposal_pb2.ProposalStatus,
        ChangeSetStatus=chat_session_pb2.ChangeSetStatus,
        enum_name=enum_name,
        chat_role=views.chat_role,
        side_by_side=diffview.side_by_side,
        quote=quote,
    )
    return environment


class Site:
    """What every handler shares: the clients, the gate, the templates, the server's own origin."""

    def __init__(self, clients: views.Clients, gate: Gate, token_file: Path | None = None) -> None:
        self.clients = clients
        self.gate = gate
        self.token_file = token_path(token_file)
        self.jinja = templates()

    def render(self, request: Request, name: str, values: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        session: WebSession | None = getattr(request.state, "session", None)
        body = self.jinja.get_template(name).render(
            request=request, csrf=session.csrf if session else "", path=request.url.path, **values
        )
        return HTMLResponse(body, status_code)

    async def read(self, request: Request, name: str, reader: Callable[..., dict[str, Any]], *args: Any) -> Response:
        """A page: the log's head first (where its live updates start), then the data; a reader
        that knows the head itself (the board) gives it as `head`."""
        try:
            values = await run_in_threadpool(_with_head, self.clients, reader, *args)
        except CwError as error:
            return self.failure(request, error)
        return self.render(request, name, values)

    def failure(self, request: Request, error: CwError) -> HTMLResponse:
        status_code = 404 if error.code.name == "NOT_FOUND" else 400
        return self.render(request, "error.html", {"message": error.message, "head": 0}, status_code)

    def client_token_matches(self, given: str) -> bool:
        try:
            expected = read_client_token(self.token_file)
        except CwError:
            return False
        return bool(given) and hmac.compare_digest(expected.encode(), given.strip().encode())


def _with_head(clients: views.Clients, reader: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    if reader is views.initiative:
        return reader(clients, *args)
    head = clients.store.head_sequence()
    return {"head": head, **reader(clients, *args)}


def same_origin(request: Request) -> bool:
    """A post's Origin (when the browser sends one) is this server's."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


class Guard:
    """Sessions and the headers of every answer, as plain ASGI (no copy of the answer's body);
    CSRF tokens are checked where forms are read."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            await refusal(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)

    def refusal(self, request: Request) -> Response | None:
        """The answer instead of the page, or None (the session, if any, is put on the request)."""
        if request.method == "POST" and not same_origin(request):
            return Response(Refusal.CROSS_SITE, 403, media_type="text/plain")
        if request.url.path.startswith(OPEN_PATHS):
            return None
        session = self.site.gate.session_of(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if request.method == "GET" and request.headers.get("accept") != "text/event-stream":
                return RedirectResponse("/login", 303)
            return Response(Refusal.NO_SESSION, 401, media_type="text/plain")
        request.scope.setdefault("state", {})["session"] = session
        return None


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is the session's."""
    form = await request.form()
    session: WebSession = request.state.session
    if not csrf_matches(session, str(form.get("csrf", ""))):
        raise HTTPException(403, Refusal.BAD_CSRF)
    return form


def local_path(target: str, fallback: str) -> str:
    """Where to go back to after an action: a path on this server only."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def create_app(site: Site) -> Starlette:
    def page(name: str, reader: Callable[..., dict[str, Any]], *keys: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            return await site.read(request, name, reader, *(request.path_params[k] for k in keys))

        return handler

    async def diff_page(request: Request) -> Response:
        phase_id = request.path_params["phase_id"]
        return await site.read(request, "diff.html", _diff_values, phase_id, dict(request.query_params))

    async def initiative_diff_page(request: Request) -> Response:
        initiative_id = request.path_params["initiative_id"]
        return await site.read(request, "diff.html", _initiative_diff_values, initiative_id, dict(request.query_params))

    async def login(request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not token:
            return site.render(request, "login.html", {"head": 0, "refusal": ""})
        opened = site.gate.open_session(token)
        if isinstance(opened, str):
            return site.render(request, "login.html", {"head": 0, "refusal": f"this link is {opened}"}, 403)
        return _logged_in(request, opened[0])

    async def login_with_token(request: Request) -> Response:
        form = await request.form()
        if not site.client_token_matches(str(form.get("client_token", ""))):
            return site.render(request, "login.html", {"head": 0, "refusal": "that is not the client token"}, 403)
        session_id, _ = site.gate.new_session(time.time())
        return _logged_in(request, session_id)

    def _logged_in(request: Request, session_id: str) -> Response:
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=SESSION_TTL_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        session = site.gate.session_of(request.cookies.get(SESSION_COOKIE))
        if session is not None and csrf_matches(session, str(form.get("csrf", ""))):
            site.gate.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def act(request: Request) -> Response:
        form = await checked_form(request)
        action = actions.ACTIONS.get(request.path_params["action"])
        if action is None:
            raise HTTPException(404, "no such action")
        back = local_path(str(form.get("back", "")), "/")
        try:
            destination = await run_in_threadpool(action, site.clients, request.path_params["target"], form)
        except CwError as error:
            return site.failure(request, error)
        return RedirectResponse(local_path(destination or back, back), 303)

    async def pages_of(request: Request) -> Response:
        try:
            where = await run_in_threadpool(views.root_page, site.clients, request.path_params["initiative_id"])
        except CwError as error:
            return site.failure(request, error)
        return RedirectResponse(where, 303)

    routes = [
        Route("/", page("home.html", views.home)),
        Route("/initiatives/{initiative_id}", page("initiative.html", views.initiative, "initiative_id")),
        Route("/initiatives/{initiative_id}/diff", initiative_diff_page),
        Route("/initiatives/{initiative_id}/pages", pages_of),
        Route("/phases/{phase_id}", page("phase.html", views.phase, "phase_id")),
        Route("/phases/{phase_id}/diff", diff_page),
        Route("/tasks/{task_id}", page("task.html", views.task, "task_id")),
        Route("/agents/{agent_id}", page("agent.html", views.agent, "agent_id")),
        Route("/inbox", page("inbox.html", views.inbox)),
        Route("/pages/{page_id}", page("page.html", views.page, "page_id")),
        Route("/accounts", page("accounts.html", views.accounts)),
        Route("/login", login, methods=["GET"]),
        Route("/login", login_with_token, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/act/{action}/{target}", act, methods=["POST"]),
        Route("/live/events", live.events_endpoint(site.clients)),
        Route("/live/agents/{agent_id}/output", live.output_endpoint(site.clients)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, site=site)])


def _diff_values(clients: views.Clients, phase_id: str, query: dict[str, str]) -> dict[str, Any]:
    found = clients.store.get_phase(phase_id)
    diff = clients.orchestrator.phase_diff(phase_id)
    comments = clients.store.list_comments(phase_id)
    return _diff_page(found.initiative_id, diff, comments, query) | {"phase": found, "comments": comments}


def _initiative_diff_values(clients: views.Clients, initiative_id: str, query: dict[str, str]) -> dict[str, Any]:
    found = clients.store.get_initiative(initiative_id)
    diff = clients.orchestrator.initiative_diff(initiative_id)
    return _diff_page(initiative_id, diff, [], query) | {"phase": None, "initiative": found, "comments": []}


def _diff_page(
    initiative_id: str,
    diff: Any,
    comments: list[review_comment_pb2.ReviewComment],
    query: dict[str, str],
) -> dict[str, Any]:
    page_number = int(query["page"]) if query.get("page", "").isdigit() else 0
    files = diffview.file_views(diff, [c for c in comments if not c.resolved], query.get("file", ""), page_number)
    return {
        "initiative_id": initiative_id,
        "files": files,
        "split": query.get("view") == "split",
        "focus": query.get("file", ""),
        "additions": sum(f.additions for f in files),
        "deletions": sum(f.deletions for f in files),
        "resolved": [c for c in comments if c.resolved],
    }
