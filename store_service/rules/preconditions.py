"""Conditional writes: `expected_update_time` and `expected_statuses` on the Update requests.

Read from the request (and validated) before the transaction; checked against the stored row inside
it, before anything changes, so a writer with a stale view gets ABORTED instead of overwriting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from store_service.db.messages import enum_name, enum_set, timestamp_to_datetime
from store_service.domain.errors import Aborted


@dataclass(frozen=True)
class Preconditions:
    update_time: datetime | None = None
    # Stored values ('in_progress'); empty: any status.
    statuses: frozenset[str] = frozenset()


NONE = Preconditions()


def requested(request: Message, prefix: str = "") -> Preconditions:
    """The preconditions an Update request carries; `prefix` locates it inside a larger request."""
    fields = request.DESCRIPTOR.fields_by_name
    update_time = None
    if "expected_update_time" in fields and request.HasField("expected_update_time"):
        update_time = timestamp_to_datetime(request.expected_update_time)  # type: ignore[attr-defined]
    statuses: frozenset[str] = frozenset()
    if "expected_statuses" in fields:
        statuses = frozenset(enum_set(request, fields["expected_statuses"], f"{prefix}expected_statuses"))
    return Preconditions(update_time, statuses)


def _shown_time(value: datetime) -> str:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.replace(tzinfo=UTC))
    return stamp.ToJsonString()


def check(resource: str, message_type: type[Message], row: Any, expected: Preconditions) -> None:
    """Raises Aborted naming the first precondition the stored row does not meet (status first:
    it says more than a time). Values are shown in the API's vocabulary."""
    if expected.statuses and row.status not in expected.statuses:
        enum = message_type.DESCRIPTOR.fields_by_name["status"].enum_type
        wanted = " or ".join(sorted(enum_name(enum, status) for status in expected.statuses))
        raise Aborted(resource, row.id, "status", enum_name(enum, row.status), wanted)
    if expected.update_time is not None and row.update_time != expected.update_time:
        stored, wanted = _shown_time(row.update_time), _shown_time(expected.update_time)
        raise Aborted(resource, row.id, "update_time", stored, wanted)
