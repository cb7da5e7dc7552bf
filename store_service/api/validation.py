"""Every request is checked here, at the edge, before a servicer sees it: one walk over the message
driven by its descriptors, so a new RPC or field is covered without a line of code.

What the walk refuses (INVALID_ARGUMENT naming the field's path, such as `task.create_time`,
`changes[2].after.order` or `events[0].details.cost`): bytes that do not parse as the request
message, timestamps outside 0001-01-01..9999-12-31 or with nanos outside [0, 1e9), durations
outside protobuf's range, enum numbers the enum does not define (single, repeated, in maps, in
nested messages), NaN and infinities (in any double, and so in any google.protobuf.Struct), strings
holding the NUL character (PostgreSQL's text cannot store it, so neither database is asked to), and
values over the limits of `limits.py`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor as Field
from google.protobuf.message import DecodeError, Message

from store_service.api import limits
from store_service.domain.errors import FieldViolation, InvalidArgument

# Descriptors come from the C (upb) or the Python implementation; both have the same interface.
FieldDescriptor = Any

MIN_TIMESTAMP_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_DURATION_SECONDS = 315_576_000_000  # 10,000 years, protobuf's own bound
NANOS_PER_SECOND = 1_000_000_000
# More violations than this are not listed: an error must fit in gRPC's trailing metadata.
MAX_REPORTED = 10
# A map key or Struct key quoted in a field path is cut to this many characters.
MAX_QUOTED_KEY = 40

Violations = Iterator[FieldViolation]


def parse_request(raw: bytes, deserializer: Callable[[bytes], Message]) -> Message:
    """The request message of raw bytes, checked; what gRPC would have answered INTERNAL for
    (bytes that are no such message, a string that is not UTF-8) is INVALID_ARGUMENT here."""
    try:
        request = deserializer(raw)
    except DecodeError as error:
        raise InvalidArgument.of("request", "is not a well-formed request message") from error
    check_message(request)
    return request


def check_message(message: Message, path: str = "") -> None:
    """Raises InvalidArgument listing the first violations in `message`, whose fields are named
    under `path` (empty for a whole request)."""
    violations = list(itertools.islice(message_violations(message, path), MAX_REPORTED))
    if violations:
        raise InvalidArgument(violations)


def message_violations(message: Message, path: str) -> Violations:
    well_known = _WELL_KNOWN.get(message.DESCRIPTOR.full_name)
    if well_known is not None:
        yield from well_known(message, path)
        return
    owner = message.DESCRIPTOR.name
    for field, value in message.ListFields():
        yield from _field_violations(owner, field, value, _join(path, field.name))


def _field_violations(owner: str, field: FieldDescriptor, value: Any, path: str) -> Violations:
    if not field.is_repeated:
        yield from _value_violations(owner, field, value, path)
        return
    if len(value) > limits.MAX_ITEMS:
        yield FieldViolation(path, f"holds {len(value)} items; at most {limits.MAX_ITEMS}")
        return
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        entry = field.message_type.name
        for key in sorted(value):
            item_path = f"{path}[{_quoted(key)}]"
            yield from _value_violations(entry, key_field, key, f"{item_path}.key")
            yield from _value_violations(entry, value_field, value[key], item_path)
        return
    for index, item in enumerate(value):
        yield from _value_violations(owner, field, item, f"{path}[{index}]")


def _value_violations(owner: str, field: FieldDescriptor, value: Any, path: str) -> Violations:
    is_message = field.message_type is not None
    limit = limits.field_limit(owner, field.name, is_message) if field.type in _SIZED else None
    if limit is not None and (size := limit.measure(value)) > limit.size:
        yield FieldViolation(path, f"is {size} {limit.unit}; at most {limit.describe()}")
        return
    if field.enum_type is not None and value not in field.enum_type.values_by_number:
        yield FieldViolation(path, f"{value} is not a {field.enum_type.name} value")
    elif field.type in (Field.TYPE_DOUBLE, Field.TYPE_FLOAT) and not math.isfinite(value):
        yield FieldViolation(path, "must be a finite number")
    elif field.type == Field.TYPE_STRING and "\x00" in value:
        yield FieldViolation(path, "must not hold the NUL character (U+0000)")
    elif is_message:
        yield from message_violations(value, path)


def _timestamp(stamp: Any, path: str) -> Violations:
    if not MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        yield FieldViolation(path, "must lie between 0001-01-01 and 9999-12-31")
    elif not 0 <= stamp.nanos < NANOS_PER_SECOND:
        yield FieldViolation(path, "nanos must lie in [0, 1e9)")


def _duration(duration: Any, path: str) -> Violations:
    seconds, nanos = duration.seconds, duration.nanos
    if abs(seconds) > MAX_DURATION_SECONDS or abs(nanos) >= NANOS_PER_SECOND or seconds * nanos < 0:
        yield FieldViolation(path, "is not a valid duration")


def _struct(struct: Any, path: str) -> Violations:
    for key in sorted(struct.fields):  # maps keep no order: sorted, the same error every time
        yield from _struct_value(struct.fields[key], f"{path}.{_quoted(key)}")


def _list_value(values: Any, path: str) -> Violations:
    for index, value in enumerate(values.values):
        yield from _struct_value(value, f"{path}[{index}]")


def _struct_value(value: Any, path: str) -> Violations:
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        yield FieldViolation(path, "must be a finite number (JSON has no NaN or Infinity)")
    elif kind == "struct_value":
        yield from _struct(value.struct_value, path)
    elif kind == "list_value":
        yield from _list_value(value.list_value, path)


_WELL_KNOWN: dict[str, Callable[[Any, str], Violations]] = {
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.Duration": _duration,
    "google.protobuf.Struct": _struct,
    "google.protobuf.ListValue": _list_value,
    "google.protobuf.Value": _struct_value,
}
# Only strings, bytes and messages have a size to limit.
_SIZED = frozenset({Field.TYPE_STRING, Field.TYPE_BYTES, Field.TYPE_MESSAGE})


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _quoted(key: Any) -> str:
    text = str(key)
    return text if len(text) <= MAX_QUOTED_KEY else f"{text[:MAX_QUOTED_KEY]}..."
