"""Generic mapping between rows and proto messages.

Row attributes carry the proto field names, enums map `TASK_STATUS_IN_PROGRESS` <-> 'in_progress',
maps of scalars are JSON objects, repeated strings JSON lists, an empty string, an empty map or an
unset optional means NULL. A message of scalars (Agent.usage) is stored flat, one column per field
named `<field>_<its field>`, so the database can sum it.
Everything a client sends passes `validate_*` first, so a bad value is INVALID_ARGUMENT with the
field named, never a database error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from store_service.db.models import Base
from store_service.domain.errors import FieldViolation, InvalidArgument

MessageT = TypeVar("MessageT", bound=Message)
# Descriptors come from the C (upb) or the Python implementation; both have the same interface.
Descriptor = Any
EnumDescriptor = Any
FieldDescriptor = Any

OUTPUT_ONLY = frozenset({"id", "create_time", "update_time", "has_credentials", "has_config"})
# Model attributes whose proto field name is a reserved word on the model.
ATTRIBUTE_ALIASES = {"metadata": "metadata_json"}
_EPOCH = datetime(1970, 1, 1)


def _enum_prefix(enum: EnumDescriptor) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_to_db(enum: EnumDescriptor, number: int) -> str | None:
    """None for the UNSPECIFIED zero; raises ValueError for a number the enum does not define."""
    value = enum.values_by_number.get(number)
    if value is None:
        raise ValueError(f"{number} is not a {enum.name} value")
    return None if number == 0 else value.name.removeprefix(_enum_prefix(enum)).lower()


def enum_from_db(enum: EnumDescriptor, value: str) -> int:
    return int(enum.values_by_name[enum_name(enum, value)].number)


def enum_name(enum: EnumDescriptor, value: str) -> str:
    """The API's name of a stored value: 'completed' of TaskStatus is `TASK_STATUS_COMPLETED`."""
    return _enum_prefix(enum) + value.upper()


def enum_set(message: Message, field: FieldDescriptor, path: str) -> list[str]:
    """The stored values a repeated enum field names (a set of statuses to filter or expect).
    UNSPECIFIED names no value, so it is refused like an unknown number."""
    values = []
    for index, number in enumerate(getattr(message, field.name)):
        value = enum_to_db(field.enum_type, number) if number in field.enum_type.values_by_number else None
        if value is None:
            raise InvalidArgument.of(f"{path}[{index}]", f"{number} is not a {field.enum_type.name} value")
        values.append(value)
    return values


def timestamp_to_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC).replace(tzinfo=None)


def set_timestamp(stamp: timestamp_pb2.Timestamp, value: datetime) -> None:
    stamp.CopyFrom(timestamp_of(value))


def _is_timestamp(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp"


def _is_map(field: FieldDescriptor) -> bool:
    """A `map<K, V>` of scalars, stored as one JSON object column."""
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def attribute(field_name: str) -> str:
    return ATTRIBUTE_ALIASES.get(field_name, field_name)


def flat_columns(field: FieldDescriptor, owner: Any) -> tuple[str, ...]:
    """The columns a message of scalars is stored in (`usage` -> `usage_input_tokens`, ...), when
    `owner` (a model or a record class) has them all; empty otherwise."""
    if field.message_type is None or _is_timestamp(field) or _is_map(field) or field.is_repeated:
        return ()
    columns = tuple(f"{field.name}_{part.name}" for part in field.message_type.fields)
    return columns if all(hasattr(owner, column) for column in columns) else ()


def _flat_message(field: FieldDescriptor, columns: tuple[str, ...]) -> Callable[[Any], Any]:
    """How a row's flat columns become the message (`to_message`)."""
    message_class = _message_class(field)

    def shown(row: Any) -> Message:
        values = {
            part.name: getattr(row, column) for part, column in zip(field.message_type.fields, columns, strict=True)
        }
        return message_class(**{name: value for name, value in values.items() if value is not None})

    return shown


def _message_class(field: FieldDescriptor) -> type[Message]:
    return message_factory.GetMessageClass(field.message_type)


def flatten(message: Message, field: FieldDescriptor) -> dict[str, Any]:
    """A message of scalars as the values of its flat columns (unset fields as zero)."""
    value = getattr(message, field.name)
    return {f"{field.name}_{part.name}": getattr(value, part.name) for part in field.message_type.fields}


@dataclass(frozen=True)
class _Shown:
    """One field `to_message` fills: from which attribute, and how its stored value becomes the
    field's value (None: as it is)."""

    name: str
    attribute: str
    shown: Callable[[Any], Any] | None
    # A flat message: `shown` is given the whole row.
    whole_row: bool = False


def timestamp_of(value: datetime) -> timestamp_pb2.Timestamp:
    """A stored time (naive UTC) as a Timestamp; the arithmetic of `Timestamp.FromDatetime` for
    naive UTC times, without its calendar round trip."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def _enum_numbers(enum: EnumDescriptor) -> Callable[[str], int]:
    numbers = {enum_to_db(enum, value.number): value.number for value in enum.values if value.number}
    return numbers.__getitem__


_SHOWN_FIELDS: dict[tuple[type[Message], type, frozenset[str]], tuple[_Shown, ...]] = {}


def _shown_fields(message_type: type[Message], row_type: type, skip: frozenset[str]) -> tuple[_Shown, ...]:
    """What `to_message` fills for rows of this class, worked out once per class: fields the row
    has an attribute for (the model's, or a record's, named like the proto's), but `skip`."""
    key = (message_type, row_type, skip)
    if key not in _SHOWN_FIELDS:
        _SHOWN_FIELDS[key] = _fields_of(message_type, row_type, skip)
    return _SHOWN_FIELDS[key]


def _fields_of(message_type: type[Message], row_type: type, skip: frozenset[str]) -> tuple[_Shown, ...]:
    fields = []
    for field in message_type.DESCRIPTOR.fields:
        name = field.name
        flat = flat_columns(field, row_type)
        if flat and name not in skip:
            fields.append(_Shown(name, name, _flat_message(field, flat), whole_row=True))
            continue
        if name in skip or not hasattr(row_type, attribute(name)):
            continue
        if field.enum_type is not None:
            fields.append(_Shown(name, attribute(name), _enum_numbers(field.enum_type)))
        elif _is_timestamp(field):
            fields.append(_Shown(name, attribute(name), timestamp_of))
        elif _is_map(field) or field.message_type is None:
            # Scalars, maps (stored as a dict) and repeated strings (a list) go in as they are.
            fields.append(_Shown(name, attribute(name), None))
    return tuple(fields)


def to_message(row: Any, message_type: type[MessageT], skip: Iterable[str] = ()) -> MessageT:
    """The message of a row: an ORM row or a record (`db/reads.py`), anything whose attributes
    carry the proto field names. Unset (None) values leave their field unset."""
    values = {}
    for field in _shown_fields(message_type, type(row), frozenset(skip)):
        if field.whole_row and field.shown is not None:
            values[field.name] = field.shown(row)
            continue
        value = getattr(row, field.attribute)
        if value is not None:
            values[field.name] = value if field.shown is None else field.shown(value)
    return message_type(**values)


def field_value(message: Message, field: FieldDescriptor, path: str) -> Any:
    """The value a row stores for one field: enum names, datetimes, None for unset or empty."""
    if field.enum_type is not None:
        try:
            return enum_to_db(field.enum_type, getattr(message, field.name))
        except ValueError as error:
            raise InvalidArgument.of(path, str(error)) from error
    if _is_map(field):
        return dict(getattr(message, field.name)) or None
    if field.is_repeated and field.message_type is None and field.enum_type is None:
        return list(getattr(message, field.name)) or None  # a list of strings, one JSON column
    if field.message_type is not None:
        if not message.HasField(field.name):
            return None
        if _is_timestamp(field):
            return timestamp_to_datetime(getattr(message, field.name))
        raise InvalidArgument.of(path, "cannot be set here")
    if field.has_presence and not message.HasField(field.name):
        return None
    value = getattr(message, field.name)
    return None if value == "" else value


@functools.cache
def writable_fields(descriptor: Descriptor, model: type[Base]) -> dict[str, FieldDescriptor]:
    """The fields of a message a request may set on the model's table (the same every call: kept).
    Read it, never change it."""
    return {
        field.name: field
        for field in descriptor.fields
        if field.name not in OUTPUT_ONLY
        and (attribute(field.name) in model.__mapper__.attrs or flat_columns(field, model))
    }


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.message_type is not None or field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name))


@functools.cache
def _required_columns(model: type[Base]) -> tuple[str, ...]:
    """The attributes a Create must set: not nullable, no default, not the key."""
    return tuple(
        name
        for name, column in model.__mapper__.columns.items()
        if not column.nullable and column.default is None and column.server_default is None and not column.primary_key
    )


def _required_violations(model: type[Base], values: dict[str, Any], prefix: str) -> list[FieldViolation]:
    return [
        FieldViolation(f"{prefix}.{name}", "is required")
        for name in _required_columns(model)
        if values.get(name) in (None, "")
    ]


def values_for_create(message: Message, model: type[Base], prefix: str) -> dict[str, Any]:
    """The column values a Create request sets; unset fields take the column defaults."""
    fields = writable_fields(message.DESCRIPTOR, model)
    # ListFields: the fields that are set (present, or not their zero value), as _is_set says.
    values = _stored_values(
        message, model, [field.name for field, _ in message.ListFields() if field.name in fields], prefix
    )
    values = {key: value for key, value in values.items() if value is not None}
    violations = _required_violations(model, values, prefix)
    if violations:
        raise InvalidArgument(violations)
    return values


def values_for_update(message: Message, model: type[Base], prefix: str, mask_paths: list[str]) -> dict[str, Any]:
    """AIP-134: the fields in the mask, or every populated field when the mask is empty."""
    fields = writable_fields(message.DESCRIPTOR, model)
    if mask_paths:
        unknown = [path for path in mask_paths if path not in fields]
        if unknown:
            raise InvalidArgument(
                [FieldViolation("update_mask", f"{path!r} is not an updatable field") for path in unknown]
            )
        chosen = mask_paths
    else:
        chosen = [name for name, field in fields.items() if _is_set(message, field)]
    values = _stored_values(message, model, chosen, prefix)
    columns = model.__mapper__.columns
    violations = [
        FieldViolation(f"{prefix}.{name}", "cannot be cleared")
        for name, value in values.items()
        if value is None and not columns[name].nullable
    ]
    if violations:
        raise InvalidArgument(violations)
    return values


def _stored_values(message: Message, model: type[Base], names: Iterable[str], prefix: str) -> dict[str, Any]:
    """The column values of the named fields: one column each, or a flat message's columns."""
    fields = writable_fields(message.DESCRIPTOR, model)
    values: dict[str, Any] = {}
    for name in names:
        field = fields[name]
        if flat_columns(field, model):
            values.update(flatten(message, field))
        else:
            values[attribute(name)] = field_value(message, field, f"{prefix}.{name}")
    return values


def struct_from_dict(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def message_to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=False)
