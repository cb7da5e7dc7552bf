"""The values a change event carries (store_service/db/event_values.py), row by row, without a database."""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from cw.store.v1 import account_pb2, agent_pb2, proposal_pb2, task_pb2
from store_service.api.crud import Resource
from store_service.db import event_values, messages
from store_service.db.models import Account, Agent, InitiativeProject, LogChunk, Proposal, Task

STAMP = datetime(2026, 1, 2, 3, 4, 5, 678000)


def test_a_created_row_carries_its_defaults_and_parses_back_to_its_message() -> None:
    task = Task(id="t1", name="write it", description="the text", create_time=STAMP, update_time=STAMP)
    details = event_values.created(task)
    assert "omitted" not in details
    values = details["values"]
    assert values["status"] == "TASK_STATUS_PENDING"  # the column's default, as the INSERT stores it
    assert values["category"] == "TASK_CATEGORY_EXECUTE"
    assert json_format.ParseDict(values, task_pb2.Task()) == messages.shown_message(task)


def test_an_account_s_secrets_never_show_only_whether_they_are_set() -> None:
    account = Account(id="a1", email="a@x", credentials="SECRET-1", config_json="SECRET-2", update_time=STAMP)
    created = event_values.created(account)
    assert "SECRET" not in str(created)
    assert created["values"]["has_credentials"] is True and created["values"]["has_config"] is True
    updated = event_values.updated(account, ["credentials", "config_json"])
    assert "SECRET" not in str(updated)
    stamp = "2026-01-02T03:04:05.678Z"
    assert updated == {"values": {"has_credentials": True, "has_config": True, "update_time": stamp}}


def test_an_update_names_each_changed_field_by_its_message_s_name() -> None:
    agent = Agent(id="g1", usage_input_tokens=5, usage_output_tokens=0, update_time=STAMP)
    assert set(event_values.updated(agent, ["usage_input_tokens"])["values"]) == {"usage", "update_time"}
    proposal = Proposal(id="p1", metadata_json='{"k": 1}', update_time=STAMP)
    values = event_values.updated(proposal, ["metadata_json"])["values"]
    assert json_format.ParseDict(values, proposal_pb2.Proposal()).metadata == '{"k": 1}'
    cleared = Task(id="t1", reason=None, update_time=STAMP)
    assert event_values.updated(cleared, ["reason"])["values"]["reason"] is None


def test_values_beyond_the_cap_are_left_out_the_largest_first_and_named() -> None:
    room = event_values.VALUES_BYTES
    values = {"small": "s", "big": "b" * (room // 2), "bigger": "c" * (room // 2 + 10)}
    kept = event_values.within_cap(values)
    assert set(kept["values"]) == {"small", "big"}
    assert kept["omitted"] == ["bigger"]
    struct = struct_pb2.Struct()
    struct.update(kept["values"])
    assert struct.ByteSize() <= room
    assert event_values.within_cap({"small": "s"}) == {"values": {"small": "s"}}


def test_an_agent_s_output_is_named_not_copied_and_a_table_without_a_message_carries_nothing() -> None:
    chunk = LogChunk(id="c1", agent_id="g1", content="output " * 10, create_time=STAMP)
    details = event_values.created(chunk)
    assert details["omitted"] == ["content"]
    assert "content" not in details["values"]
    assert event_values.created(InitiativeProject(id="x", initiative_id="i", project_id="p")) == {}


def test_the_api_shows_every_table_as_the_events_do() -> None:
    resources = [found for found in gc.get_objects() if isinstance(found, Resource)]
    assert resources
    for resource in resources:
        if resource.model in messages.MESSAGE_OF:
            assert messages.MESSAGE_OF[resource.model] is resource.message, resource.model
            assert resource.hidden == messages.hidden(resource.model)
    shown = messages.shown_message(Account(id="a1", credentials="c", update_time=STAMP))
    assert shown == account_pb2.Account(id="a1", has_credentials=True, update_time=shown.update_time)  # type: ignore[union-attr]
    assert isinstance(messages.shown_message(Agent(id="g1")), agent_pb2.Agent)


def _every_kind_of_field() -> list[Message]:
    """Messages of every table, with each kind of field set: enums, int64s, doubles, timestamps,
    repeated fields, maps, Structs, an unknown enum number."""
    task = task_pb2.Task(id="t", name="n", order=-3, retry_count=2, budget_usd=1.5, budget_tokens=2**40)
    task.status = task_pb2.TASK_STATUS_COMPLETED
    task.review_comment_ids.extend(["a", "b"])
    task.create_time.FromDatetime(STAMP)
    unknown = task_pb2.Task(id="u")
    unknown.status = 999  # type: ignore[assignment]  # a number this build has no name for
    shown: list[Message] = [task, unknown, task_pb2.Task(budget_usd=float("inf")), task_pb2.Task()]
    for message_type in messages.MESSAGE_OF.values():
        message = message_type()
        for field in message.DESCRIPTOR.fields:
            _set_some(message, field)
        shown.append(message)
    return shown


def _set_some(message: Message, field: Any) -> None:
    value: Any = {
        FieldDescriptor.CPPTYPE_STRING: "é\u2028x" if field.type != FieldDescriptor.TYPE_BYTES else b"\x00\xff",
        FieldDescriptor.CPPTYPE_BOOL: True,
        FieldDescriptor.CPPTYPE_INT32: -7,
        FieldDescriptor.CPPTYPE_UINT32: 7,
        FieldDescriptor.CPPTYPE_INT64: -(2**60),
        FieldDescriptor.CPPTYPE_UINT64: 2**60,
        FieldDescriptor.CPPTYPE_DOUBLE: 0.1,
        FieldDescriptor.CPPTYPE_FLOAT: 0.1,
        FieldDescriptor.CPPTYPE_ENUM: 1,
    }.get(field.cpp_type)
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return
        if field.is_repeated:
            target = target.add()
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
            target.FromDatetime(STAMP)
        elif field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
            target.update({"k": [1, "v", None, {"n": True}]})
        return
    if value is None:
        return
    if field.is_repeated:
        getattr(message, field.name).extend([value, value])
    else:
        setattr(message, field.name, value)


def test_the_values_are_json_format_s_own_field_for_field() -> None:
    for message in _every_kind_of_field():
        expected = json_format.MessageToDict(message, preserving_proto_field_name=True)
        assert event_values.json_values(message) == expected, type(message).__name__


def test_the_cap_is_measured_only_when_the_values_might_exceed_it() -> None:
    # The bound never falls below the Struct's size, whatever the values hold.
    cases: list[dict[str, Any]] = [
        {"s": "x" * 100, "u": "é" * 50, "n": 3.5, "b": True, "z": None},
        {"nested": {"list": [1, "two", {"three": [None, False]}], "": ""}},
        {f"k{index}": index for index in range(300)},
    ]
    for values in cases:
        struct = struct_pb2.Struct()
        struct.update(values)
        assert event_values._most_bytes(values) >= struct.ByteSize()
