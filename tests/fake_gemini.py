"""A fake Gemini API (generativelanguage `v1beta`) on 127.0.0.1 for the real Gemini CLI the tests run.

The CLI (pointed here by `GOOGLE_GEMINI_BASE_URL`) asks `POST /v1beta/models/MODEL:streamGenerateContent
?alt=sse` for its conversation and `:generateContent` / `:countTokens` for side questions. Each
conversation request is answered by the test's script with a `Reply`: a text, function calls (the
CLI runs `run_shell_command` / `write_file` and asks again), the `usageMetadata` the test expects the
CLI to report, or an error in the API's shape (`{"error": {code, message, status, details}}`): a 429
with `RetryInfo` / `QuotaFailure` details, a 400 `API_KEY_INVALID`, a 403 `PERMISSION_DENIED`.

Every request is recorded with a fingerprint of the key it carried (`x-goog-api-key`), never the
key itself, and every usage the fake reported is kept (`reported()`), so a test can compare what cw
stored with exactly what the API said.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gemini-2.5-pro"
# The CLI names where it works in its first message's session context ("- **Workspace Directories:**
# / - /path").
_WORKSPACE = re.compile(r"Workspace Directories:\**\s*\n\s*-\s*(?P<path>/\S+)")
_SESSION_CONTEXT = "<session_context>"


def fingerprint(credential: str) -> str:
    """What is recorded of a key: enough to tell two apart, nothing to use."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Usage:
    """A response's `usageMetadata`: the prompt (cached tokens included), the answer, thinking."""

    prompt: int = 0
    candidates: int = 0
    cached: int = 0
    thoughts: int = 0

    def metadata(self) -> dict[str, int]:
        data = {
            "promptTokenCount": self.prompt,
            "candidatesTokenCount": self.candidates,
            "totalTokenCount": self.prompt + self.candidates + self.thoughts,
        }
        if self.cached:
            data["cachedContentTokenCount"] = self.cached
        if self.thoughts:
            data["thoughtsTokenCount"] = self.thoughts
        return data


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]


def shell(command: str) -> Call:
    return Call("run_shell_command", {"command": command, "description": "run a command"})


def write(path: str, content: str) -> Call:
    return Call("write_file", {"file_path": path, "content": content})


@dataclass(frozen=True)
class Reply:
    """One answer: text and/or function calls with their usage, or an error (`status` != 200)."""

    text: str = ""
    calls: tuple[Call, ...] = ()
    usage: Usage = Usage(prompt=10, candidates=1)
    status: int = 200
    error_status: str = ""
    details: tuple[dict[str, Any], ...] = ()


def rate_limited(
    retry_delay: str = "3600s", quota_id: str = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
) -> Reply:
    """A 429 as the API sends an exhausted quota: QuotaFailure naming the quota, RetryInfo its delay."""
    details = (
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests", "quotaId": quota_id}
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
    )
    message = f"You exceeded your current quota. Please retry in {retry_delay}."
    return Reply(text=message, status=429, error_status="RESOURCE_EXHAUSTED", details=details)


def bad_key() -> Reply:
    details = (
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"},
    )
    return Reply(
        text="API key not valid. Please pass a valid API key.",
        status=400,
        error_status="INVALID_ARGUMENT",
        details=details,
    )


def forbidden() -> Reply:
    return Reply(text="Permission denied: the API key is suspended.", status=403, error_status="PERMISSION_DENIED")


def unauthorized() -> Reply:
    return Reply(text="Request had invalid authentication credentials.", status=401, error_status="UNAUTHENTICATED")


@dataclass(frozen=True)
class Turn:
    """A conversation request: which step (model turns in its history), where the CLI works, the
    first and latest user texts (the CLI's session context left out), whose key, the request."""

    step: int
    working_directory: str
    prompt: str
    latest: str
    credential: str
    body: dict[str, Any]


Script = Callable[[Turn], Reply]


def steps(*replies: Reply) -> Script:
    """The conversation's requests answered in order; past the end, the last reply again."""

    def answer(turn: Turn) -> Reply:
        return replies[min(turn.step, len(replies) - 1)]

    return answer


@dataclass
class Recorded:
    path: str
    fingerprint: str
    conversation: bool
    step: int
    status: int
    usage: Usage | None


@dataclass
class FakeGemini:
    script: Script = field(default_factory=lambda: steps(Reply(text="done")))
    # Side questions (`generateContent`: is the turn over, a summary...): answered with this text.
    side_text: str = '{"reasoning": "the model finished", "next_speaker": "user"}'
    side_usage: Usage = Usage()
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.requests.append(entry)

    def recorded(self) -> list[Recorded]:
        with self.lock:
            return list(self.requests)

    def reported(self) -> list[Usage]:
        """Every usage the fake answered with, in order."""
        return [entry.usage for entry in self.recorded() if entry.usage is not None]

    def conversation(self, body: dict[str, Any], credential: str) -> tuple[Turn, Reply]:
        contents = [item for item in body.get("contents") or [] if isinstance(item, dict)]
        step = sum(1 for item in contents if item.get("role") == "model")
        users = [_text(item) for item in contents if item.get("role") == "user"]
        users = [text for text in users if text]
        found = _WORKSPACE.search(_text(contents[0], with_context=True)) if contents else None
        directory = found.group("path") if found else ""
        turn = Turn(step, directory, users[0] if users else "", users[-1] if users else "", credential, body)
        return turn, self.script(turn)


def _text(content: dict[str, Any], with_context: bool = False) -> str:
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    texts = [str(part["text"]) for part in parts if isinstance(part, dict) and "text" in part]
    return "\n".join(text for text in texts if with_context or not text.startswith(_SESSION_CONTEXT))


def response(reply: Reply, model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    parts += [{"functionCall": {"name": call.name, "args": call.args}} for call in reply.calls]
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": reply.usage.metadata(),
        "modelVersion": model,
        "responseId": f"resp-{id(reply):x}",
    }


def error_body(reply: Reply) -> dict[str, Any]:
    status = reply.error_status or HTTPStatus(reply.status).phrase.upper().replace(" ", "_")
    return {"error": {"code": reply.status, "message": reply.text, "status": status, "details": list(reply.details)}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `requests`, not a log."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        model = path.rsplit("/", 1)[-1].split(":")[0] or MODEL
        credential = str(self.headers.get("x-goog-api-key") or "")
        fake = self.server.fake
        if path.endswith(":countTokens"):
            self._json(HTTPStatus.OK, {"totalTokens": 10})
        elif path.endswith(":streamGenerateContent"):
            turn, reply = fake.conversation(body, credential)
            ok = reply.status == HTTPStatus.OK
            fake.record(
                Recorded(path, fingerprint(credential), True, turn.step, reply.status, reply.usage if ok else None)
            )
            self._stream(reply, model) if ok else self._json(reply.status, error_body(reply))
        elif path.endswith(":generateContent"):
            reply = Reply(text=fake.side_text, usage=fake.side_usage)
            fake.record(Recorded(path, fingerprint(credential), False, 0, 200, reply.usage))
            self._json(HTTPStatus.OK, response(reply, model))
        else:
            self._json(HTTPStatus.NOT_FOUND, error_body(Reply(text="not found", status=404, error_status="NOT_FOUND")))

    def do_GET(self) -> None:
        self._json(HTTPStatus.NOT_FOUND, error_body(Reply(text="not found", status=404, error_status="NOT_FOUND")))

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: Reply, model: str) -> None:
        """The reply as one server-sent event (the text first, then the calls, then the usage)."""
        data = f"data: {json.dumps(response(reply, model))}\r\n\r\n".encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGemini


@contextmanager
def serving(fake: FakeGemini) -> Iterator[FakeGemini]:
    """`fake` listening on 127.0.0.1 (any free port) until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="fake-gemini", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
