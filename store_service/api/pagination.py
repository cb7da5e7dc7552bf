"""AIP-158 paging: `page_size` (default 50, at most 1000) and an opaque `page_token`; a page also
stops before `limits.PAGE_BYTES` serialized bytes, so an answer never reaches gRPC's 4 MB limit."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from store_service.api import limits
from store_service.db.views import PageCursor
from store_service.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Rows read at first, before their size is known, and at most at once after that.
FIRST_READ = 20
MAX_READ = 500
# Rows read at first when earlier pages of the same table tell their usual size: a page of 100 small
# rows is then one query (each query sorts every matching row), and a page of rows larger than
# guessed still reads at most this many.
FIRST_READ_KNOWN = 100
# A repeated element costs its tag and length prefix on top of its own bytes.
FRAMING_BYTES = 5


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE) -> int:
    if requested < 0:
        raise InvalidArgument.of("page_size", "must not be negative")
    return min(requested or default, MAX_PAGE_SIZE)


def _fingerprint(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_token(cursor: PageCursor, filters: Mapping[str, Any]) -> str:
    payload = {"t": cursor.create_time.isoformat(), "i": cursor.id, "f": _fingerprint(filters)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_token(token: str, filters: Mapping[str, Any]) -> PageCursor | None:
    """A token only continues the listing it came from: other filters make it invalid."""
    if not token:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = PageCursor(datetime.fromisoformat(payload["t"]), str(payload["i"]))
        fingerprint = payload["f"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidArgument.of("page_token", "is not a token this service issued") from error
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument.of("page_token", "belongs to a listing with other filters")
    return cursor


class SizedPage:
    """One page being filled: rows go in until `limit` rows or `budget` bytes, but always at least
    one (a row is capped by the field limits, so one always fits). Pure, so that the single paging
    loop (crud.ResourceServicer.list_page) only reads rows and offers them."""

    def __init__(self, limit: int, budget: int = limits.PAGE_BYTES, usual_row_bytes: float | None = None) -> None:
        """`usual_row_bytes`: the average serialized size of rows on earlier pages of this table."""
        self.limit, self.budget = limit, budget
        self.usual_row_bytes = usual_row_bytes
        self.messages: list[Any] = []
        self.size = 0
        # Where the last accepted row stands in the listing (a PageCursor, an event sequence).
        self.last: Any = None
        # A row beyond this page exists.
        self.more = False

    def offer(self, message: Message, position: Any, size: int | None = None) -> bool:
        """Adds the message (`size` bytes serialized, measured here when not given) if it fits;
        False, and `more` set, once the page is full."""
        cost = (message.ByteSize() if size is None else size) + FRAMING_BYTES
        if len(self.messages) >= self.limit or (self.messages and self.size + cost > self.budget):
            self.more = True
            return False
        self.messages.append(message)
        self.size += cost
        self.last = position
        return True

    def offer_all(self, messages: Sequence[Message], positions: Sequence[Any], reach: Sequence[int]) -> None:
        """`offer` of each message in turn until one does not fit, `reach[i]` being the serialized
        bytes of the first i+1 messages together: in one step when every row that the page has room
        for fits its budget, as they do but on the largest pages."""
        take = min(self.limit - len(self.messages), len(messages))
        cost = reach[take - 1] + take * FRAMING_BYTES if take else 0
        if take and self.size + cost <= self.budget:
            self.messages.extend(messages[:take])
            self.size += cost
            self.last = positions[take - 1]
            self.more = self.more or take < len(messages)
            return
        for index, message in enumerate(messages):
            size = reach[index] - (reach[index - 1] if index else 0)
            if not self.offer(message, positions[index], size):
                return

    def rows_to_read(self) -> int:
        """How many rows the next read should fetch: as many as may still fit, judging by the rows
        so far, plus one to see whether the listing goes on."""
        room = self.limit - len(self.messages)
        if not self.messages:
            if self.usual_row_bytes is None:
                return min(room, FIRST_READ) + 1
            return max(1, min(room, int(self.budget / self.usual_row_bytes), FIRST_READ_KNOWN)) + 1
        return max(1, min(room, int((self.budget - self.size) / self.average_bytes()), MAX_READ)) + 1

    def average_bytes(self) -> float:
        """The average serialized size of the rows on this page (call once it holds one)."""
        return self.size / len(self.messages)
