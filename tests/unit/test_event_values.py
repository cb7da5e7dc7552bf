"""The values a change event carries (store_service/db/event_values.py), row by row, without a database."""

from __future__ import annotations

import gc
from datetime import datetime

from google.protobuf import json_format, struct_pb2

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
