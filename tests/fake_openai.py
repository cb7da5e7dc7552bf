"""A fake OpenAI Responses API on 127.0.0.1 for the real agent CLIs the tests run (Codex): each
POST /v1/responses is answered, as a stream of server-sent events, with the next scripted reply
(its text, the shell commands it asks the CLI to run, and the usage the test expects the CLI to
report), or with a scripted failure (a status, headers and a JSON body, as OpenAI sends them: a 429
with `x-ratelimit-reset-*` or a usage limit's `resets_in_seconds`, a 401).

Replies come from a list (the next one per request, the last one repeated) or from a script: a
function of the request (`Request`: its body, the credential it carried, and what the CLI sent
back last: a command's output or the user's message)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Codex 0.171's shell tool: `exec_command {"cmd": "..."}`.
SHELL_TOOL = "exec_command"


@dataclass(frozen=True)
class Reply:
    text: str = ""
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    # Shell commands the model asks the CLI to run (one function call each), before any text.
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failure:
    """An HTTP error instead of a stream."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def rate_limited(resets_at: int | None) -> Failure:
    """A 429 as OpenAI answers an exhausted plan: a `usage_limit_reached` error naming when it
    resets (`resets_at`, epoch seconds, which Codex prints as a local time; `resets_in_seconds`),
    with the `x-ratelimit-reset-requests` and `retry-after` headers too; None: no reset named."""
    error: dict[str, Any] = {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": "plus",
    }
    headers: tuple[tuple[str, str], ...] = ()
    if resets_at is not None:
        seconds = max(int(resets_at - time.time()), 0)
        error |= {"resets_at": resets_at, "resets_in_seconds": seconds}
        headers = (("x-ratelimit-reset-requests", f"{seconds}s"), ("retry-after", str(seconds)))
    return Failure(429, {"error": error}, headers)


def too_many_requests() -> Failure:
    """A plain 429 (requests per minute), naming no reset in its body."""
    body = {"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "Rate limit reached for requests"}}
    return Failure(429, body, (("x-ratelimit-reset-requests", "20s"),))


def unauthorized() -> Failure:
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-revo****. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    return Failure(401, body)


def fingerprint(credential: str) -> str:
    """What a recorded request keeps of its credential: never the credential itself."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Request:
    body: dict[str, Any]
    # fingerprint() of the bearer token it carried ("" when none).
    credential: str
    status: int = 200

    @property
    def items(self) -> list[dict[str, Any]]:
        found = self.body.get("input")
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []

    @property
    def tool_outputs(self) -> list[str]:
        """Every command output the CLI sent back so far in the conversation."""
        return [str(item.get("output")) for item in self.items if item.get("type") == "function_call_output"]

    @property
    def after_tool(self) -> bool:
        """The CLI sent a command's output last: the model's turn goes on."""
        return bool(self.items) and self.items[-1].get("type") == "function_call_output"

    @property
    def user_text(self) -> str:
        """Everything the user said (the prompts of each run of the thread)."""
        said = []
        for item in self.items:
            if item.get("type") == "message" and item.get("role") == "user":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        said.append(part["text"])
        return "\n".join(said)


Script = Callable[[Request], Reply | Failure]


@dataclass
class FakeResponses:
    replies: list[Reply]
    script: Script | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[Request] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_reply(self, request: dict[str, Any], credential: str = "") -> Reply | Failure:
        with self.lock:
            self.requests.append(request)
            seen = Request(request, credential)
            answer = self.script(seen) if self.script else self.replies[min(len(self.requests), len(self.replies)) - 1]
            self.recorded.append(Request(request, credential, answer.status if isinstance(answer, Failure) else 200))
            return answer


def _event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _items(reply: Reply, number: int) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [
        {
            "type": "function_call",
            "id": f"fc_{number}_{index}",
            "call_id": f"call_{number}_{index}",
            "name": SHELL_TOOL,
            "arguments": json.dumps({"cmd": command}),
        }
        for index, command in enumerate(reply.commands)
    ]
    if reply.text or not calls:
        text = [{"type": "output_text", "text": reply.text}]
        calls.append({"type": "message", "role": "assistant", "id": f"msg_{number}", "content": text})
    return calls


def _stream(reply: Reply, number: int) -> bytes:
    response_id = f"resp_{number}"
    usage = {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }
    done = [
        _event("response.output_item.done", output_index=index, item=item)
        for index, item in enumerate(_items(reply, number))
    ]
    return b"".join(
        [
            _event("response.created", response={"id": response_id}),
            *done,
            _event("response.completed", response={"id": response_id, "usage": usage}),
        ]
    )


@contextmanager
def fake_responses(replies: list[Reply] | None = None, script: Script | None = None) -> Iterator[FakeResponses]:
    """The server, listening on 127.0.0.1 until the block ends."""
    fake = FakeResponses(list(replies or []), script)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/v1/responses":
                self.send_error(404)
                return
            bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            answer = fake.next_reply(json.loads(body or b"{}"), fingerprint(bearer) if bearer else "")
            if isinstance(answer, Failure):
                self._fail(answer)
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(_stream(answer, len(fake.requests)))

        def _fail(self, failure: Failure) -> None:
            data = json.dumps(failure.body).encode()
            self.send_response(failure.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in failure.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
