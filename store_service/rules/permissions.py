"""What each identity may do in the store: the orchestrator everything, a client (a person or a
person's tool) what a person does.

A client may not call the orchestrator's own methods, set the fields the orchestrator owns (the
facts it acts on: agents' directories and processes, merge bases, merge times), or make the status
transitions that only the orchestrator makes (a task to IN_PROGRESS or COMPLETED, a phase to
PENDING_REVIEW...). It may approve a phase, retry a blocked task, archive an initiative.

Pure decisions: the caller passes the identity it read in the async handler (see
cw_edge/interceptor.py) and, for an update, the stored row read inside the write transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cw.store.v1 import initiative_pb2, message_pb2, phase_pb2, proposal_pb2, task_pb2
from cw_edge.tokens import Identity
from store_service.db.messages import enum_from_db
from store_service.domain.errors import PermissionDenied

ORCHESTRATOR_ONLY_METHODS = frozenset(
    f"/cw.store.v1.{method}"
    for method in (
        "AccountService/GetAccountSecrets",
        "EventService/AppendEvent",
        "LogChunkService/CreateLogChunk",
        "LogChunkService/DeleteLogChunks",
        "AgentService/CreateAgent",
        "AgentService/DeleteAgent",
        # Leases are the orchestrators' coordination; anyone may list them.
        "LeaseService/AcquireLease",
        "LeaseService/RenewLease",
        "LeaseService/ReleaseLease",
    )
)


@dataclass(frozen=True)
class Rights:
    """A client's rights on one resource; statuses are the resource's enum numbers."""

    orchestrator_fields: frozenset[str] = frozenset()
    # When set: the only fields a client may change on an existing row.
    client_fields: frozenset[str] | None = None
    created_statuses: frozenset[int] = frozenset()
    transitions: frozenset[tuple[int, int]] = frozenset()
    # Fields a client's Create may set only to these stored values (a person writes as a person).
    created_values: Mapping[str, frozenset[str]] = field(default_factory=dict)


MESSAGE_PROGRESS = (
    message_pb2.MESSAGE_STATUS_PENDING,
    message_pb2.MESSAGE_STATUS_READ,
    message_pb2.MESSAGE_STATUS_RESPONDED,
)

# Keyed by the request field that carries the resource (`task` in CreateTaskRequest).
CLIENT_RIGHTS: Mapping[str, Rights] = {
    "agent": Rights(
        orchestrator_fields=frozenset(
            {"worktree_id", "output_file_path", "pid", "session_id", "exit_code", "outcome", "error"}
            | {"result", "pending_questions", "status", "conversation_id", "orchestrator"}
            | {"usage_input_tokens", "usage_output_tokens", "usage_cache_read_tokens", "usage_cache_write_tokens"}
            | {"usage_cost_usd"}
        ),
        client_fields=frozenset({"user_dismiss_time"}),
    ),
    "phase": Rights(
        orchestrator_fields=frozenset({"merge_base", "merge_commits", "reason"}),
        created_statuses=frozenset({phase_pb2.PHASE_STATUS_PENDING, phase_pb2.PHASE_STATUS_APPROVED}),
        transitions=frozenset(
            {
                (phase_pb2.PHASE_STATUS_PENDING, phase_pb2.PHASE_STATUS_APPROVED),
                (phase_pb2.PHASE_STATUS_APPROVED, phase_pb2.PHASE_STATUS_PENDING),
            }
        ),
    ),
    "task": Rights(
        orchestrator_fields=frozenset(
            {"summary", "merge_time", "queue_time", "reason", "next_attempt_time"}
            | {"review_comment_ids", "resolved_comment_ids", "merge_source_task_id", "merge_source_phase_id"}
        ),
        created_statuses=frozenset({task_pb2.TASK_STATUS_PENDING}),
        transitions=frozenset({(task_pb2.TASK_STATUS_BLOCKED, task_pb2.TASK_STATUS_PENDING)}),
    ),
    "project": Rights(orchestrator_fields=frozenset({"sync_error", "sync_error_time", "last_fetch_time"})),
    # A failed answer run is counted by the orchestrator (conversations are retried).
    "conversation": Rights(orchestrator_fields=frozenset({"attempts", "next_attempt_time"})),
    # Agents' messages come from the orchestrator (their signal files); a person writes as the user,
    # reads them and answers them.
    "message": Rights(
        created_statuses=frozenset({message_pb2.MESSAGE_STATUS_PENDING}),
        # Pending -> read -> responded, or straight to responded.
        transitions=frozenset(itertools.combinations(MESSAGE_PROGRESS, 2)),
        created_values={"sender_type": frozenset({"user"})},
    ),
    # Accepted only through AcceptProposals, which applies them; a person may dismiss and reopen.
    "proposal": Rights(
        orchestrator_fields=frozenset({"change_set_id", "entity_id"}),
        created_statuses=frozenset({proposal_pb2.PROPOSAL_STATUS_PENDING}),
        transitions=frozenset(
            {
                (proposal_pb2.PROPOSAL_STATUS_PENDING, proposal_pb2.PROPOSAL_STATUS_DISMISSED),
                (proposal_pb2.PROPOSAL_STATUS_DISMISSED, proposal_pb2.PROPOSAL_STATUS_PENDING),
            }
        ),
    ),
    # The orchestrator answers a session with the agent of its refine task.
    "chatsession": Rights(orchestrator_fields=frozenset({"task_id", "agent_id"})),
    "initiative": Rights(
        created_statuses=frozenset({initiative_pb2.INITIATIVE_STATUS_ACTIVE}),
        transitions=frozenset(
            {
                (initiative_pb2.INITIATIVE_STATUS_ACTIVE, initiative_pb2.INITIATIVE_STATUS_ARCHIVED),
                (initiative_pb2.INITIATIVE_STATUS_ARCHIVED, initiative_pb2.INITIATIVE_STATUS_ACTIVE),
                (initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW, initiative_pb2.INITIATIVE_STATUS_ARCHIVED),
                (initiative_pb2.INITIATIVE_STATUS_COMPLETED, initiative_pb2.INITIATIVE_STATUS_ARCHIVED),
            }
        ),
    ),
}


def check_write(
    identity: Identity | None, message_type: Any, prefix: str, values: Mapping[str, Any], stored: Any = None
) -> None:
    """Raises PermissionDenied, naming the field, when a client's Create (`stored` None) or Update
    would set what only the orchestrator sets. A value equal to the stored one changes nothing and
    passes, so a client may send back a row it read. No identity (outside a call) counts as a client."""
    rights = CLIENT_RIGHTS.get(message_type.DESCRIPTOR.name.lower())
    if identity is Identity.ORCHESTRATOR or rights is None:
        return
    changed = {name: value for name, value in values.items() if stored is None or getattr(stored, name) != value}
    for name, allowed in rights.created_values.items() if stored is None else ():
        if changed.get(name) not in allowed:
            raise PermissionDenied(
                f"{prefix}.{name}: a person writes as {' or '.join(sorted(allowed))}", field=f"{prefix}.{name}"
            )
    for name in changed:
        owned = name in rights.orchestrator_fields
        if owned or (stored is not None and rights.client_fields is not None and name not in rights.client_fields):
            raise PermissionDenied(f"{prefix}.{name}: only the orchestrator sets it", field=f"{prefix}.{name}")
    if "status" in changed:
        _check_status(rights, message_type, prefix, changed["status"], stored)


def _check_status(rights: Rights, message_type: Any, prefix: str, new: str, stored: Any) -> None:
    enum = message_type.DESCRIPTOR.fields_by_name["status"].enum_type
    target = enum_from_db(enum, new)
    if stored is None:
        if target in rights.created_statuses:
            return
        what = f"create it as {enum.values_by_number[target].name}"
    else:
        source = enum_from_db(enum, stored.status)
        if (source, target) in rights.transitions:
            return
        what = f"move it from {enum.values_by_number[source].name} to {enum.values_by_number[target].name}"
    raise PermissionDenied(f"{prefix}.status: only the orchestrator may {what}", field=f"{prefix}.status")
