"""The values a change event carries, so that a follower of the log need not read the row again.

A created event carries the row as the API shows it; an updated event each changed field with its
new value (null: cleared) and the row's new `update_time` (its version: a follower holding a newer
row ignores an older event's values). Values are the message's JSON form under the proto's field
names, so `json_format.ParseDict` builds the message again. Secrets never: a row is shown through
`messages.shown_message`, which leaves them out as every answer does.

An event's details are capped (`DETAILS_BYTES`, the limit `AppendEvent` puts on a client's
details too): values that do not fit are left out, the largest first, and named in `omitted`, as
are the fields kept out of the log by design (an agent's output, a change set's entries), so a
follower knows which ones to read. An event without `values` (older ones, or a table without a
message) says only which row changed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format, message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from sqlalchemy import inspect

from store_service.db.messages import MESSAGE_OF, changed_fields_shown, shown_message
from store_service.db.models import Base, ChangeSet, LogChunk

KIB = 1024
# The most an event's details take, serialized as the google.protobuf.Struct clients receive.
DETAILS_BYTES = 64 * KIB
# What the values may take of it; the rest is for the id, `changed`, `status` and `omitted`.
VALUES_BYTES = DETAILS_BYTES - 8 * KIB
# Fields never carried: the bulk of the log would be written twice (output) or does not fit
# (a change set records whole rows before and after).
LEFT_OUT: dict[type[Base], tuple[str, ...]] = {LogChunk: ("content",), ChangeSet: ("entries",)}


def created(row: Base, message: Message | None = None) -> dict[str, Any]:
    """The details a created row's event adds: its values, and what is left out of them. The row
    first takes the column defaults its INSERT would give it (they are applied only after this
    hook, which runs before the flush), so the values are those stored. `message`: the row's
    shown message, when the caller made it already (repositories/sqlalchemy/inserts.py)."""
    with_defaults(row)
    if message is None:
        message = shown_message(row)
    if message is None:
        return {}
    return within_cap(json_values(message), LEFT_OUT.get(type(row), ()))


def with_defaults(row: Base) -> None:
    """Sets each attribute the row was not given to its column's default, as the INSERT would."""
    given = inspect(row).dict
    for key, default in column_defaults(type(row)):
        if key not in given:
            setattr(row, key, default_value(default))


def default_value(default: Any) -> Any:
    """The value a column default gives a new row."""
    return default.arg if default.is_scalar else default.arg(None)


@functools.cache
def column_defaults(model: type[Base]) -> tuple[tuple[str, Any], ...]:
    """(attribute, column default) of the model's columns with a plain or computed default."""
    found = []
    for prop in model.__mapper__.column_attrs:
        default = prop.columns[0].default
        if default is not None and (default.is_scalar or default.is_callable):
            found.append((prop.key, default))
    return tuple(found)


def updated(row: Base, changed: list[str]) -> dict[str, Any]:
    """The details an updated row's event adds: each changed field's new value (None: cleared),
    the new `update_time`, and what is left out."""
    if type(row) not in MESSAGE_OF:
        return {}
    fields = [*changed_fields_shown(row, changed), "update_time"]
    message = shown_message(row, fields)
    shown = json_values(message) if message is not None else {}
    left_out = [field for field in LEFT_OUT.get(type(row), ()) if field in fields]
    return within_cap({field: shown.get(field) for field in fields}, left_out)


# ---- the message's JSON form, field by field --------------------------------------------------------

_Convert = Callable[[Any], Any]
_AS_THEY_ARE = frozenset({FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_BOOL})
_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})


def _finite(value: float) -> float:
    if math.isinf(value) or math.isnan(value):
        raise _NotPlain
    return value


class _NotPlain(Exception):
    """A value this module does not convert itself: json_format converts the whole message."""


def _enum(field: FieldDescriptor) -> _Convert:
    """Each number's JSON value as json_format gives it (a name, or a json_name option's),
    asked of json_format once per number."""
    assert field.containing_type is not None and field.enum_type is not None  # an enum field of a message
    holder = message_factory.GetMessageClass(field.containing_type)
    names: dict[int, Any] = {}
    for number in field.enum_type.values_by_number:
        message = holder()
        if field.is_repeated:
            getattr(message, field.name).append(number)
        else:
            setattr(message, field.name, number)
        shown = json_format.MessageToDict(message, preserving_proto_field_name=True)
        if field.name in shown:  # not the zero of a field without presence: never listed, never asked
            names[number] = shown[field.name][0] if field.is_repeated else shown[field.name]

    def name(number: int) -> Any:
        if number not in names:
            raise _NotPlain
        return names[number]

    return name


def _timestamp(value: Any) -> str:
    text: str = value.ToJsonString()
    return text


def _element(field: FieldDescriptor) -> _Convert | None:
    """How one value of `field` is converted, as json_format's _FieldToJsonObject does; None: left
    to json_format (bytes, 32-bit floats, messages other than Timestamp)."""
    kind = field.cpp_type
    if kind == FieldDescriptor.CPPTYPE_STRING:
        return None if field.type == FieldDescriptor.TYPE_BYTES else str
    if kind in _AS_THEY_ARE:
        return bool if kind == FieldDescriptor.CPPTYPE_BOOL else int
    if kind in _INT64:
        return str
    if kind == FieldDescriptor.CPPTYPE_DOUBLE:
        return _finite
    if kind == FieldDescriptor.CPPTYPE_ENUM and field.enum_type is not None:
        return None if field.enum_type.full_name == "google.protobuf.NullValue" else _enum(field)
    if kind == FieldDescriptor.CPPTYPE_MESSAGE and field.message_type is not None:
        return _timestamp if field.message_type.full_name == "google.protobuf.Timestamp" else None
    return None


@functools.cache
def _converter(field: FieldDescriptor) -> _Convert | None:
    if field.is_extension or (field.message_type is not None and field.message_type.GetOptions().map_entry):
        return None
    element = _element(field)
    if element is None or not field.is_repeated:
        return element
    return lambda values: [element(value) for value in values]


def json_values(message: Message) -> dict[str, Any]:
    """`json_format.MessageToDict(message, preserving_proto_field_name=True)`, the same dict, field
    by field with a conversion made once per field: MessageToDict's own dispatch took as long as
    the rest of a created event (bench/store_floor.py, CreateTask). A field it does not convert
    itself (a map, bytes, a message other than Timestamp) leaves the whole message to json_format.
    tests/unit/test_event_values.py holds the two equal."""
    values: dict[str, Any] = {}
    try:
        for field, value in message.ListFields():
            convert = _converter(field)
            if convert is None:
                raise _NotPlain
            values[field.name] = convert(value)
    except _NotPlain:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    return values


# ---- the cap -------------------------------------------------------------------------------------

# The most a field of a Struct adds to its JSON value's bytes (beyond its key's and its string's
# UTF-8): the map entry's, the key's, the Value's and its kind's tags and lengths, each length a
# varint of at most 5 bytes; a list's element adds a Value's and its kind's.
_ENTRY_BYTES = 4 * (1 + 5)
_ELEMENT_BYTES = 2 * (1 + 5)
# A number is 8 bytes (a double); a bool or a null 1 (the tag is counted above).
_SCALAR_BYTES = 8


def _most_bytes(value: Any) -> int:
    """At least the bytes `value` takes in a Struct: a bound cheap to reach, where building the
    Struct is not (UTF-8 takes at most 4 bytes a character)."""
    if isinstance(value, str):
        return 4 * len(value)
    if isinstance(value, dict):
        return sum(_ENTRY_BYTES + 4 * len(key) + _most_bytes(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return sum(_ELEMENT_BYTES + _most_bytes(item) for item in value)
    return _SCALAR_BYTES


def within_cap(values: dict[str, Any], left_out: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """`values` as far as they fit in `VALUES_BYTES`; those that do not, the largest first, and
    `left_out` named in `omitted`. Values surely within it (`_most_bytes`) are not measured."""
    omitted = list(left_out)
    values = {name: value for name, value in values.items() if name not in left_out}
    if _most_bytes(values) > VALUES_BYTES and _struct_bytes(values) > VALUES_BYTES:
        sizes = {name: _struct_bytes({name: value}) for name, value in values.items()}
        room = VALUES_BYTES
        for name in sorted(values, key=lambda name: (sizes[name], name)):
            if sizes[name] <= room:
                room -= sizes[name]
            else:
                omitted.append(name)
        values = {name: value for name, value in values.items() if name not in omitted}
    return {"values": values, **({"omitted": sorted(omitted)} if omitted else {})}


def _struct_bytes(values: dict[str, Any]) -> int:
    struct = struct_pb2.Struct()
    struct.update(values)
    return int(struct.ByteSize())
