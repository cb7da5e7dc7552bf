"""Rows as the API's messages: the one conversion the API's answers and the events' values share.

Row attributes carry the proto field names, enums map `TASK_STATUS_IN_PROGRESS` <-> 'in_progress',
maps of scalars are JSON objects, repeated strings JSON lists, an empty string, an empty map or an
unset optional means NULL. A message of scalars (Agent.usage) is stored flat, one column per field
named `<field>_<its field>`, so the database can sum it.

It sits in the database layer, beside the models, so that the change events (change_events.py)
show a row exactly as the API does without the database layer reaching into the API package; the
API's own mapping of requests to rows (checks and all) stays in `store_service/api/convert.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import message_factory, timestamp_pb2
from google.protobuf.message import Message

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    chat_session_pb2,
    conversation_pb2,
    initiative_pb2,
    log_chunk_pb2,
    message_pb2,
    page_pb2,
    phase_pb2,
    project_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)
from store_service.db.models import (
    Account,
    Agent,
    Base,
    ChangeSet,
    ChatMessage,
    ChatSession,
    Conversation,
    Initiative,
    LogChunk,
    Page,
    Phase,
    PhaseDependency,
    Project,
    Proposal,
    ReviewComment,
    Task,
    TaskDependency,
)
from store_service.db.models import Message as MessageRow
from store_service.domain.errors import InvalidArgument

MessageT = TypeVar("MessageT", bound=Message)
# Descriptors come from the C (upb) or the Python implementation; both have the same interface.
Descriptor = Any
EnumDescriptor = Any
FieldDescriptor = Any

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


def is_timestamp(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp"


def is_map(field: FieldDescriptor) -> bool:
    """A `map<K, V>` of scalars, stored as one JSON object column."""
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def attribute(field_name: str) -> str:
    return ATTRIBUTE_ALIASES.get(field_name, field_name)


def flat_columns(field: FieldDescriptor, owner: Any) -> tuple[str, ...]:
    """The columns a message of scalars is stored in (`usage` -> `usage_input_tokens`, ...), when
    `owner` (a model or a record class) has them all; empty otherwise."""
    if field.message_type is None or is_timestamp(field) or is_map(field) or field.is_repeated:
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


@dataclass(frozen=True)
class _Shown:
    """One field `to_message` fills: from which attribute, and how its stored value becomes the
    field's value (None: as it is)."""

    name: str
    attribute: str
    shown: Callable[[Any], Any] | None
    # A flat message: `shown` is given the whole row.
    whole_row: bool = False
    # The attributes the value comes from (a flat message's columns): what a change of it names.
    sources: tuple[str, ...] = ()


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
            fields.append(_Shown(name, name, _flat_message(field, flat), whole_row=True, sources=flat))
            continue
        if name in skip or not hasattr(row_type, attribute(name)):
            continue
        if field.enum_type is not None:
            fields.append(_Shown(name, attribute(name), _enum_numbers(field.enum_type), sources=(attribute(name),)))
        elif is_timestamp(field):
            fields.append(_Shown(name, attribute(name), timestamp_of, sources=(attribute(name),)))
        elif is_map(field) or field.message_type is None:
            # Scalars, maps (stored as a dict) and repeated strings (a list) go in as they are.
            fields.append(_Shown(name, attribute(name), None, sources=(attribute(name),)))
    return tuple(fields)


def to_message(
    row: Any, message_type: type[MessageT], skip: Iterable[str] = (), only: Collection[str] | None = None
) -> MessageT:
    """The message of a row: an ORM row or a record (`db/reads.py`), anything whose attributes
    carry the proto field names. Unset (None) values leave their field unset. `only`: just these
    fields (an update event's changed ones)."""
    values = {}
    for field in _shown_fields(message_type, type(row), frozenset(skip)):
        if only is not None and field.name not in only:
            continue
        if field.whole_row and field.shown is not None:
            values[field.name] = field.shown(row)
            continue
        value = getattr(row, field.attribute)
        if value is not None:
            values[field.name] = value if field.shown is None else field.shown(value)
    return message_type(**values)


def fields_from(
    message_type: type[Message], row_type: type, attributes: Collection[str], skip: Iterable[str] = ()
) -> list[str]:
    """The fields of `message_type` whose value comes from any of `attributes` (a change's
    attribute names: `metadata_json` is `metadata`, `usage_input_tokens` is `usage`)."""
    return [
        field.name
        for field in _shown_fields(message_type, row_type, frozenset(skip))
        if any(source in attributes for source in field.sources)
    ]


# The message each table's rows are shown as (the API's Resources name the same: a unit test
# compares them). A table missing here has no message of its own (initiative_project).
MESSAGE_OF: dict[type[Base], type[Message]] = {
    Account: account_pb2.Account,
    Agent: agent_pb2.Agent,
    ChangeSet: chat_session_pb2.ChangeSet,
    ChatMessage: chat_session_pb2.ChatMessage,
    ChatSession: chat_session_pb2.ChatSession,
    Conversation: conversation_pb2.Conversation,
    Initiative: initiative_pb2.Initiative,
    LogChunk: log_chunk_pb2.LogChunk,
    MessageRow: message_pb2.Message,
    Page: page_pb2.Page,
    Phase: phase_pb2.Phase,
    PhaseDependency: phase_pb2.PhaseDependency,
    Project: project_pb2.Project,
    Proposal: proposal_pb2.Proposal,
    ReviewComment: review_comment_pb2.ReviewComment,
    Task: task_pb2.Task,
    TaskDependency: task_pb2.TaskDependency,
}
# Fields that say whether a secret is set, never what it is: field -> the secret's attribute.
PRESENCE: dict[type[Base], dict[str, str]] = {
    Account: {"has_credentials": "credentials", "has_config": "config_json"},
}


def hidden(model: type[Base]) -> frozenset[str]:
    """Attributes no answer and no event ever shows (an account's secrets)."""
    secrets: frozenset[str] = getattr(model, "secret_fields", frozenset())
    return secrets


def show_presence(
    message: Message, row: Any, only: Collection[str] | None = None, model: type[Base] | None = None
) -> None:
    """Fills the fields that say whether each secret of the row is set. `model`: the row's table,
    for a row that is a record of the driver's (db/reads.py) rather than an ORM object."""
    for field, secret in PRESENCE.get(model or type(row), {}).items():
        if only is None or field in only:
            setattr(message, field, bool(getattr(row, secret)))


def shown_message(row: Base, only: Collection[str] | None = None) -> Message | None:
    """The row as the API shows it (its secrets never); None for a table without a message."""
    message_type = MESSAGE_OF.get(type(row))
    if message_type is None:
        return None
    message = to_message(row, message_type, hidden(type(row)), only)
    show_presence(message, row, only)
    return message


def changed_fields_shown(row: Base, attributes: Collection[str]) -> list[str]:
    """The fields of the row's message that a change of `attributes` changes, the fields saying
    whether a changed secret is set included (the secret itself never)."""
    model = type(row)
    message_type = MESSAGE_OF[model]
    fields = fields_from(message_type, model, attributes, hidden(model))
    fields += [field for field, secret in PRESENCE.get(model, {}).items() if secret in attributes]
    return fields
