"""`request_id` on writes that create: a retried request returns what the first one made; the same
request_id on another request is refused, since answering it with the first result would tell the
client its second request was done when it was not."""

from __future__ import annotations

import hashlib
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.orm import Session

from store_service.db.models import RequestRecord
from store_service.domain.errors import FailedPrecondition


def payload_hash(request: Message) -> str:
    """A digest of the request without its request_id (deterministic serialization: map entries
    in a fixed order, so the same request always hashes the same)."""
    unkeyed = type(request)()
    unkeyed.CopyFrom(request)
    unkeyed.ClearField("request_id")
    return hashlib.sha256(unkeyed.SerializeToString(deterministic=True)).hexdigest()


def _method(request: Message) -> str:
    return type(request).__name__


def earlier_result(session: Session, request: Any) -> str | None:
    """The id of what an earlier request with this request_id made, if any; FAILED_PRECONDITION
    (REQUEST_ID_REUSED) when that request was another one. Records made before payloads were
    hashed (no hash) are trusted as the same request."""
    if not request.request_id:
        return None
    record = session.get(RequestRecord, (request.request_id, _method(request)))
    if record is None:
        return None
    if record.payload_hash is not None and record.payload_hash != payload_hash(request):
        raise FailedPrecondition(
            f"request_id {request.request_id[:40]!r} was used before for another {_method(request)}: "
            "a new request needs a new request_id",
            "REQUEST_ID_REUSED",
            field="request_id",
        )
    return record.resource_id


def remember(session: Session, request: Any, resource_id: str) -> None:
    if request.request_id:
        record = RequestRecord(
            request_id=request.request_id,
            method=_method(request),
            resource_id=resource_id,
            payload_hash=payload_hash(request),
        )
        session.add(record)
