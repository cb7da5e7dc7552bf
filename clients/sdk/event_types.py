"""The event types the services record: one list, kept in step with docs/api.md ("Event types",
"Events the orchestrator records") and orchestrator_service/events.py, and its entities with the
store's tables: tests/unit/test_event_types.py compares them."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from clients.sdk.errors import InvalidArgumentError

# What the orchestrator announces: the lifecycle of agents, tasks, phases and projects.
LIFECYCLE_EVENT_TYPES = (
    "agent:spawned",
    "agent:stopped",
    "agent:crashed",
    "agent:waiting_for_input",
    "agent:resumed",
    "agent:new_session",
    "task:queued",
    "task:dispatched",
    "task:completed",
    "task:retried",
    "task:blocked",
    "task:merged",
    "phase:started",
    "phase:pending_review",
    "phase:completed",
    "phase:merge_conflict",
    "phase:changes_requested",
    "initiative:delivered",
    "project:sync_failed",
    "project:synced",
    "orchestrator:joined",
    "agent:taken_over",
    "agent:checkpointed",
    "agent:wrote_outside",
    "task:changed_nothing",
)

# Every store write records `<entity>:created|updated|deleted` for one of these.
STORE_ENTITIES = (
    "account",
    "agent",
    "change_set",
    "chat_message",
    "chat_session",
    "conversation",
    "initiative",
    "initiative_project",
    "log_chunk",
    "message",
    "page",
    "phase",
    "phase_dependency",
    "project",
    "proposal",
    "review_comment",
    "task",
    "task_dependency",
)
WRITE_ACTIONS = ("created", "updated", "deleted")

KNOWN_EVENT_TYPES = (
    *LIFECYCLE_EVENT_TYPES,
    *(f"{entity}:{action}" for entity in STORE_ENTITIES for action in WRITE_ACTIONS),
)

# Agent output arrives as a flood of these; they are shown only when asked for by name.
HIDDEN_BY_DEFAULT_PREFIX = "log_chunk:"


def check_event_types(types: Iterable[str]) -> list[str]:
    """The types as given, or InvalidArgumentError naming the unknown ones and listing the known."""
    given = list(types)
    unknown = [name for name in given if name not in KNOWN_EVENT_TYPES]
    if unknown:
        listing = ", ".join(LIFECYCLE_EVENT_TYPES)
        entities = "|".join(STORE_ENTITIES)
        message = (
            f"unknown event type {', '.join(map(repr, unknown))}; known types: {listing}, "
            f"and <entity>:created|updated|deleted for entity {entities}"
        )
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, message, "UNKNOWN_EVENT_TYPE")
    return given


def shown_by_default(event_type: str) -> bool:
    return not event_type.startswith(HIDDEN_BY_DEFAULT_PREFIX)
