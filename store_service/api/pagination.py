"""AIP-158 paging: `page_size` (default 50, at most 1000) and an opaque `page_token`."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from store_service.domain.errors import InvalidArgument
from store_service.repositories.base import PageCursor

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


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
