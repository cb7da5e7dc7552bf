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
from typing import Any

from google.protobuf import json_format, struct_pb2
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


def created(row: Base) -> dict[str, Any]:
    """The details a created row's event adds: its values, and what is left out of them. The row
    first takes the column defaults its INSERT would give it (they are applied only after this
    hook, which runs before the flush), so the values are those stored."""
    with_defaults(row)
    message = shown_message(row)
    if message is None:
        return {}
    values = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return within_cap(values, LEFT_OUT.get(type(row), ()))


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
    shown = json_format.MessageToDict(message, preserving_proto_field_name=True) if message is not None else {}
    left_out = [field for field in LEFT_OUT.get(type(row), ()) if field in fields]
    return within_cap({field: shown.get(field) for field in fields}, left_out)


def within_cap(values: dict[str, Any], left_out: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """`values` as far as they fit in `VALUES_BYTES`; those that do not, the largest first, and
    `left_out` named in `omitted`."""
    omitted = list(left_out)
    values = {name: value for name, value in values.items() if name not in left_out}
    if _struct_bytes(values) > VALUES_BYTES:
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
