"""Rows built from the values a change event carries, so that the feed need not read them again.

The store's `<entity>:created` events carry the row, its `<entity>:updated` events each changed
field with its new value and the row's new `update_time` (store_service/db/event_values.py). A row
held in the cache plus an update's values is the row as the update left it: the feed applies the
log in order, so the held row is the one the event changed, or a newer one (read by a listing or
answered to a write of ours after the event was written), which `update_time`, strictly increasing
per row, tells apart. What the values cannot give is read as before: an event without values (an
older event, written before events carried them), one with a value `omitted` (too large for the
event), or an update of a row the cache does not hold.
"""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.message import Message

from cw.store.v1 import account_pb2, agent_pb2, conversation_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service.cache.state import Row

MESSAGES: dict[str, type[Message]] = {
    "account": account_pb2.Account,
    "agent": agent_pb2.Agent,
    "conversation": conversation_pb2.Conversation,
    "initiative": initiative_pb2.Initiative,
    "phase": phase_pb2.Phase,
    "project": project_pb2.Project,
    "task": task_pb2.Task,
}


def carries(action: str, details: dict[str, Any], held: bool) -> bool:
    """Whether the event gives the whole row: a created row's values, or an update's values for a
    row the cache holds; none left out."""
    values = details.get("values")
    if not isinstance(values, dict) or details.get("omitted"):
        return False
    return action == "created" or (action == "updated" and held)


def carried_row(kind: str, action: str, details: dict[str, Any], held: Row | None) -> Row | None:
    """The row as the event left it, from its values (onto `held` for an update); None when the
    event does not carry it (`carries`): the row is to be read."""
    if kind not in MESSAGES or not carries(action, details, held is not None):
        return None
    values: dict[str, Any] = details["values"]
    row = MESSAGES[kind]()
    if action == "updated" and held is not None:
        row.CopyFrom(held)
        for name in values:  # a value replaces the field whole (a map, a list, a message); null clears it
            if name in row.DESCRIPTOR.fields_by_name:
                row.ClearField(name)
    json_format.ParseDict(
        {name: value for name, value in values.items() if value is not None}, row, ignore_unknown_fields=True
    )
    if not getattr(row, "id", ""):
        row.id = str(details.get("id") or "")  # type: ignore[attr-defined]
    return cast(Row, row)  # MESSAGES holds only cached message types


def is_newer(row: Row, held: Row | None) -> bool:
    """Whether `row` is a later version than the one held (none held: it is)."""
    if held is None:
        return True
    return bool(row.update_time.ToNanoseconds() > held.update_time.ToNanoseconds())
