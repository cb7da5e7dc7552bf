"""How what a client sends becomes a row: the values a Create or an Update writes, checked.

The other direction, a row as its message, is `store_service/db/messages.py` (shared with the
change events); its names are kept here too, so the API's modules find the whole mapping in one
import. Everything a client sends passes `validate_*` first, so a bad value is INVALID_ARGUMENT
with the field named, never a database error.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from store_service.db.messages import (
    ATTRIBUTE_ALIASES,
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MessageT,
    attribute,
    enum_from_db,
    enum_name,
    enum_set,
    enum_to_db,
    flat_columns,
    is_map,
    is_timestamp,
    set_timestamp,
    timestamp_of,
    timestamp_to_datetime,
    to_message,
)
from store_service.db.models import Base
from store_service.domain.errors import FieldViolation, InvalidArgument

# The row-to-message side, kept importable from here (see the docstring).
__all__ = [
    "ATTRIBUTE_ALIASES",
    "Descriptor",
    "EnumDescriptor",
    "FieldDescriptor",
    "MessageT",
    "attribute",
    "enum_from_db",
    "enum_name",
    "enum_set",
    "enum_to_db",
    "flat_columns",
    "set_timestamp",
    "timestamp_of",
    "timestamp_to_datetime",
    "to_message",
]

OUTPUT_ONLY = frozenset({"id", "create_time", "update_time", "has_credentials", "has_config"})


def flatten(message: Message, field: FieldDescriptor) -> dict[str, Any]:
    """A message of scalars as the values of its flat columns (unset fields as zero)."""
    value = getattr(message, field.name)
    return {f"{field.name}_{part.name}": getattr(value, part.name) for part in field.message_type.fields}


def field_value(message: Message, field: FieldDescriptor, path: str) -> Any:
    """The value a row stores for one field: enum names, datetimes, None for unset or empty."""
    if field.enum_type is not None:
        try:
            return enum_to_db(field.enum_type, getattr(message, field.name))
        except ValueError as error:
            raise InvalidArgument.of(path, str(error)) from error
    if is_map(field):
        return dict(getattr(message, field.name)) or None
    if field.is_repeated and field.message_type is None and field.enum_type is None:
        return list(getattr(message, field.name)) or None  # a list of strings, one JSON column
    if field.message_type is not None:
        if not message.HasField(field.name):
            return None
        if is_timestamp(field):
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
