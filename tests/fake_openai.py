"""A fake OpenAI Responses API on 127.0.0.1 for the real agent CLIs the tests run (Codex): each
POST /v1/responses is answered, as a stream of server-sent events, with the next scripted reply
(its text and the usage the test expects the CLI to report)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0


@dataclass
class FakeResponses:
    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(request)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]


def _event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _stream(reply: Reply, number: int) -> bytes:
    response_id = f"resp_{number}"
    item = {
        "type": "message",
        "role": "assistant",
        "id": f"msg_{number}",
        "content": [{"type": "output_text", "text": reply.text}],
    }
    usage = {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }
    return b"".join(
        [
            _event("response.created", response={"id": response_id}),
            _event("response.output_item.done", output_index=0, item=item),
            _event("response.completed", response={"id": response_id, "usage": usage}),
        ]
    )


@contextmanager
def fake_responses(replies: list[Reply]) -> Iterator[FakeResponses]:
    """The server, listening on 127.0.0.1 until the block ends."""
    fake = FakeResponses(replies)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/v1/responses":
                self.send_error(404)
                return
            reply = fake.next_reply(json.loads(body or b"{}"))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(_stream(reply, len(fake.requests)))

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
