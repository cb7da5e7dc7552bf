"""How large anything a client sends may be: one table, enforced at the edge by `validation`.

The sizes keep every stored row well under the page budget of a list answer (a task is at most
its 1 MiB description plus a few 64 KiB texts), so one row always fits in a page, and a page
always fits in gRPC's 4 MB message limit. docs/api.md lists the same table for clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from store_service.db.event_values import DETAILS_BYTES
from store_service.domain.errors import InvalidArgument

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limit:
    size: int
    # "characters" for what people read (names), "bytes" (UTF-8, or serialized) for the rest.
    unit: str

    def measure(self, value: Any) -> int:
        """The size of a string, bytes or message value in this limit's unit."""
        if isinstance(value, str):
            return len(value) if self.unit == "characters" else len(value.encode())
        if isinstance(value, bytes):
            return len(value)
        return int(value.ByteSize())

    def describe(self) -> str:
        if self.unit == "characters":
            return f"{self.size} characters"
        for unit_size, unit_name in ((MIB, "MiB"), (KIB, "KiB")):
            if self.size % unit_size == 0:
                return f"{self.size // unit_size} {unit_name}"
        return f"{self.size} bytes"


NAME = Limit(200, "characters")
IDENTIFIER = Limit(128, "bytes")
REFERENCE = Limit(1024, "bytes")
TEXT = Limit(64 * KIB, "bytes")
DOCUMENT = Limit(MIB, "bytes")

# Field name -> limit; `Message.field` entries win over bare field names. Ids (`id`, `*_id`,
# `*_ids`) are IDENTIFIER; any other string is TEXT. Items of repeated fields each obey the limit.
FIELD_LIMITS: dict[str, Limit] = {
    "name": NAME,
    "title": NAME,
    "email": NAME,
    "provider": NAME,
    "fallback_providers": NAME,
    "author": NAME,
    "agent_name": NAME,
    "type": NAME,
    "types": NAME,
    "paths": NAME,
    # Orchestrators' names (`--name`) and leases.
    "orchestrator": NAME,
    "owner": NAME,
    "prefix": NAME,
    "Project.name": Limit(100, "characters"),
    "description": DOCUMENT,
    "content": DOCUMENT,
    "credentials": DOCUMENT,
    "config_json": DOCUMENT,
    "summary": TEXT,
    "reason": TEXT,
    "error": TEXT,
    "result": TEXT,
    "pending_questions": TEXT,
    # Serialized size of the google.protobuf.Struct: the cap the store's own events keep too.
    "details": Limit(DETAILS_BYTES, "bytes"),
    "url": REFERENCE,
    "shared_remote": REFERENCE,
    "branch": REFERENCE,
    "default_branch": REFERENCE,
    "merge_base": REFERENCE,
    "worktree_id": REFERENCE,
    "output_file_path": REFERENCE,
    "file_path": REFERENCE,
    "page_token": REFERENCE,
    # Phase.merge_commits: project id -> commit.
    "MergeCommitsEntry.key": IDENTIFIER,
    "MergeCommitsEntry.value": REFERENCE,
    # A proposal's key and its references (keys of its report, or ids).
    "Proposal.key": IDENTIFIER,
    "Proposal.parent": IDENTIFIER,
    "Proposal.depends_on": IDENTIFIER,
}
DEFAULT_TEXT = TEXT
# Items in one repeated or map field (ids in a filter, events or changes in one AppendEvent).
MAX_ITEMS = 1000
# A change set records every entity it touched before and after; this keeps one within a page.
CHANGE_SET = Limit(2 * MIB, "bytes")
# A list answer stops adding rows before this many serialized bytes (gRPC's limit is 4 MB).
PAGE_BYTES = 3 * MIB


def field_limit(message_name: str, field_name: str, is_message: bool) -> Limit | None:
    """The limit of one field; None for a message field the table does not name (only its parts
    are measured)."""
    named = FIELD_LIMITS.get(f"{message_name}.{field_name}") or FIELD_LIMITS.get(field_name)
    if named is not None or is_message:
        return named
    if field_name == "id" or field_name.endswith(("_id", "_ids")):
        return IDENTIFIER
    return DEFAULT_TEXT


def check_answer(answer: Message, field: str) -> None:
    """Refuses, before its transaction commits, a write whose answer (the rows it changed) could
    not reach the client: better than a write done and an answer lost to the message limit."""
    size = answer.ByteSize()
    if size > PAGE_BYTES:
        raise InvalidArgument.of(
            field, f"the answer would be {size} bytes; at most {PAGE_BYTES // MIB} MiB: split the request"
        )
