"""The SDK's one list of event types: in step with docs/api.md and the store's tables, and what
`cw events --type` accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clients.sdk import InvalidArgumentError
from clients.sdk.event_types import (
    KNOWN_EVENT_TYPES,
    LIFECYCLE_EVENT_TYPES,
    STORE_ENTITIES,
    check_event_types,
    shown_by_default,
)
from store_service.db.models import Base

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"


def _section(heading: str) -> str:
    text = API_DOC.read_text()
    start = text.index(heading)
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_lifecycle_types_are_the_documented_table() -> None:
    rows = [line for line in _section("## Events the orchestrator records").splitlines() if line.startswith("| `")]
    documented = [name for row in rows for name in re.findall(r"`([a-z_]+:[a-z_]+)`", row.split("|")[1])]
    assert sorted(documented) == sorted(LIFECYCLE_EVENT_TYPES)


def test_lifecycle_types_are_what_the_orchestrator_records() -> None:
    """Every `"kind:what"` literal in the orchestrator's code: a type it records."""
    sources = (ROOT / "orchestrator_service").rglob("*.py")
    recorded = {name for path in sources for name in re.findall(r'"([a-z_]+:[a-z_]+)"', path.read_text())}
    assert recorded == set(LIFECYCLE_EVENT_TYPES)


def test_entities_are_the_documented_ones_and_the_stores_tables() -> None:
    sentence = _section("### Event types").split("where\n`<entity>` is one of", 1)[1].split(".", 1)[0]
    assert sorted(re.findall(r"`([a-z_]+)`", sentence)) == sorted(STORE_ENTITIES)
    recorded = {mapper.class_.event_entity for mapper in Base.registry.mappers if mapper.class_.event_entity}
    assert recorded == set(STORE_ENTITIES)


def test_known_types_pass_and_unknown_ones_are_refused_with_the_list() -> None:
    assert check_event_types(["task:completed", "log_chunk:created", "phase_dependency:deleted"]) == [
        "task:completed",
        "log_chunk:created",
        "phase_dependency:deleted",
    ]
    with pytest.raises(InvalidArgumentError) as refused:
        check_event_types(["task:completed", "task:finished"])
    message = refused.value.message
    assert "'task:finished'" in message and "'task:completed'" not in message
    assert all(name in message for name in LIFECYCLE_EVENT_TYPES) and "review_comment" in message
    assert len(KNOWN_EVENT_TYPES) == len(LIFECYCLE_EVENT_TYPES) + 3 * len(STORE_ENTITIES)


def test_agent_output_is_hidden_unless_asked_for() -> None:
    assert not shown_by_default("log_chunk:created")
    assert shown_by_default("task:created") and shown_by_default("agent:spawned")
