"""Pure: a planning agent's report (its signal file) -> the proposals to store, or why not.

The shape (README, "Planning modes"):

    {"status": "done", "summary": "...", "proposals": [
        {"key": "p1", "target_type": "phase", "title": "...", "content": "...", "depends_on": ["p0"]},
        {"key": "t1", "target_type": "task", "phase": "p1", "title": "...", "priority": "high"},
        {"target_type": "page", "target_id": "PAGE_ID", "content": "..."}]}

Keys are local to one report. `phase` (a task's phase), `parent` (a page's parent page) and
`depends_on` name a key of the same report or an id the run was shown, of the right kind;
`target_id` names a row the run was shown (its `update_time` then is what the proposal was made
against, so a later change makes it stale). Other fields are kept in the proposal's metadata.
Anything else is a `BadReport`: the attempt failed, with the first problem named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cw.store.v1 import proposal_pb2, task_pb2

TARGET_TYPES = {
    "page": proposal_pb2.PROPOSAL_TARGET_TYPE_PAGE,
    "phase": proposal_pb2.PROPOSAL_TARGET_TYPE_PHASE,
    "task": proposal_pb2.PROPOSAL_TARGET_TYPE_TASK,
}
PRIORITIES = {
    "low": task_pb2.TASK_PRIORITY_LOW,
    "medium": task_pb2.TASK_PRIORITY_MEDIUM,
    "high": task_pb2.TASK_PRIORITY_HIGH,
}
CATEGORIES = {
    name.removeprefix("TASK_CATEGORY_").lower(): number
    for name, number in task_pb2.TaskCategory.items()
    if number != task_pb2.TASK_CATEGORY_UNSPECIFIED
}
KNOWN_FIELDS = frozenset(
    {"key", "target_type", "target_id", "title", "summary", "content", "phase", "parent", "depends_on"}
    | {"priority", "category"}
)
# One report proposes at most this many changes (a detail of a large phase fits easily).
MAX_PROPOSALS = 200
# What a reference may hold: the store keeps keys and ids of at most 128 bytes.
MAX_REFERENCE_BYTES = 128
# All of a report's proposals, serialized: they are stored in one write whose answer echoes them,
# and an answer stays under 3 MiB (docs/api.md, limits).
MAX_REPORT_BYTES = 2 * 1024 * 1024


class BadReport(ValueError):
    """The report cannot be stored; the message names the first problem (`proposals[2].phase: ...`)."""


@dataclass(frozen=True)
class Shown:
    """A row the run was shown: proposals may change it, and name it in references."""

    kind: str
    id: str
    name: str
    # As the API writes timestamps (RFC 3339), so that it survives a JSON file exactly.
    update_time: str


@dataclass(frozen=True)
class RunView:
    """What one planning run was shown, kept beside its prompt for when its report is read."""

    shown: dict[str, Shown] = field(default_factory=dict)
    # A new task with no `phase` goes here (a detail run's phase, a refined task's phase).
    default_phase: str = ""
    # The chat session the run answers, and the newest message of it the run was shown.
    chat_session_id: str = ""
    answering: str = ""

    def to_json(self) -> str:
        shown = {row_id: [row.kind, row.name, row.update_time] for row_id, row in self.shown.items()}
        return json.dumps(
            {
                "shown": shown,
                "default_phase": self.default_phase,
                "chat_session_id": self.chat_session_id,
                "answering": self.answering,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RunView:
        data = json.loads(text)
        shown = {row_id: Shown(kind, row_id, name, stamp) for row_id, (kind, name, stamp) in data["shown"].items()}
        return cls(shown, data["default_phase"], data["chat_session_id"], data["answering"])


@dataclass
class _Reader:
    view: RunView
    items: list[dict[str, Any]]
    keys: dict[str, str] = field(default_factory=dict)  # key -> target type

    def problem(self, index: int, name: str, what: str) -> BadReport:
        return BadReport(f"proposals[{index}].{name}: {what}")

    def text(self, index: int, item: Mapping[str, Any], name: str) -> str:
        value = item.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.problem(index, name, f"must be a string, not {type(value).__name__}")
        return value

    def reference(self, index: int, name: str, value: Any, kind: str) -> str:
        """A key of the report naming a proposal of `kind`, or the id of a shown row of `kind`."""
        if not isinstance(value, str) or not value:
            raise self.problem(index, name, "must be a key of this report or an id")
        if self.keys.get(value) == kind:
            return value
        shown = self.view.shown.get(value)
        if shown is not None and shown.kind == kind:
            return value
        raise self.problem(index, name, f"unknown key or id {value[:MAX_REFERENCE_BYTES]!r}: no {kind} of that name")

    def choice(self, index: int, item: Mapping[str, Any], name: str, allowed: Mapping[str, int]) -> int:
        value = self.text(index, item, name)
        if not value:
            return 0
        if value.lower() not in allowed:
            raise self.problem(index, name, f"{value[:40]!r} is not one of {', '.join(allowed)}")
        return allowed[value.lower()]


def proposals_of(
    report: Mapping[str, Any], view: RunView, *, agent_id: str, initiative_id: str, report_id: str
) -> list[proposal_pb2.Proposal]:
    """The PENDING proposals of one report, in its order; raises BadReport."""
    raw = report.get("proposals")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadReport("proposals: must be a list")
    if len(raw) > MAX_PROPOSALS:
        raise BadReport(f"proposals: {len(raw)} proposals; at most {MAX_PROPOSALS} in one report")
    reader = _Reader(view, [])
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadReport(f"proposals[{index}]: must be an object")
        reader.items.append(item)
        _register_key(reader, index, item)
    proposals = [
        _proposal(reader, index, item, agent_id=agent_id, initiative_id=initiative_id, report_id=report_id)
        for index, item in enumerate(reader.items)
    ]
    size = sum(proposal.ByteSize() for proposal in proposals)
    if size > MAX_REPORT_BYTES:
        raise BadReport(
            f"proposals: {size} bytes in all; at most {MAX_REPORT_BYTES // (1024 * 1024)} MiB in one report"
        )
    return proposals


def _register_key(reader: _Reader, index: int, item: Mapping[str, Any]) -> None:
    kind = item.get("target_type")
    if not isinstance(kind, str) or kind not in TARGET_TYPES:
        shown = repr(kind)[:40] if kind is not None else "none"
        raise reader.problem(index, "target_type", f"unknown target type {shown}: page, phase or task")
    key = reader.text(index, item, "key")
    if not key:
        return
    if len(key.encode()) > MAX_REFERENCE_BYTES:
        raise reader.problem(index, "key", f"at most {MAX_REFERENCE_BYTES} bytes")
    if key in reader.keys:
        raise reader.problem(index, "key", f"{key!r} is used twice in this report")
    reader.keys[key] = kind


def _proposal(
    reader: _Reader, index: int, item: Mapping[str, Any], *, agent_id: str, initiative_id: str, report_id: str
) -> proposal_pb2.Proposal:
    kind = item["target_type"]
    proposal = proposal_pb2.Proposal(
        agent_id=agent_id,
        initiative_id=initiative_id,
        report_id=report_id,
        sort_order=index,
        target_type=TARGET_TYPES[kind],
        key=reader.text(index, item, "key"),
        title=reader.text(index, item, "title"),
        summary=reader.text(index, item, "summary"),
        content=reader.text(index, item, "content"),
        status=proposal_pb2.PROPOSAL_STATUS_PENDING,
    )
    target_id = reader.text(index, item, "target_id")
    if target_id:
        target = reader.view.shown.get(target_id)
        if target is None or target.kind != kind:
            raise reader.problem(
                index, "target_id", f"{target_id[:MAX_REFERENCE_BYTES]!r} is no {kind} this run was shown"
            )
        proposal.target_id = target_id
        proposal.target_update_time.FromJsonString(target.update_time)
        proposal.title = proposal.title or target.name
    elif not proposal.title:
        raise reader.problem(index, "title", f"a new {kind} needs a title")
    _references(reader, index, item, proposal, kind)
    if kind == "task":
        proposal.priority = reader.choice(index, item, "priority", PRIORITIES)  # type: ignore[assignment]
        proposal.category = reader.choice(index, item, "category", CATEGORIES)  # type: ignore[assignment]
    extra = {name: value for name, value in item.items() if name not in KNOWN_FIELDS}
    if extra:
        proposal.metadata = json.dumps(extra, ensure_ascii=False)
    return proposal


def _references(
    reader: _Reader, index: int, item: Mapping[str, Any], proposal: proposal_pb2.Proposal, kind: str
) -> None:
    if kind == "task":
        phase = item.get("phase") or (reader.view.default_phase if not proposal.target_id else None)
        if phase:
            proposal.parent = reader.reference(index, "phase", phase, "phase")
        elif not proposal.target_id:
            raise reader.problem(index, "phase", "a new task needs its phase: a key of this report or a phase id")
    if kind == "page" and item.get("parent"):
        proposal.parent = reader.reference(index, "parent", item["parent"], "page")
    depends_on = item.get("depends_on") or []
    if depends_on and kind == "page":
        raise reader.problem(index, "depends_on", "pages have no dependencies")
    if not isinstance(depends_on, list):
        raise reader.problem(index, "depends_on", "must be a list of keys or ids")
    for position, reference in enumerate(depends_on):
        resolved = reader.reference(index, f"depends_on[{position}]", reference, kind)
        if resolved == proposal.key and proposal.key:
            raise reader.problem(index, f"depends_on[{position}]", "a proposal cannot depend on itself")
        proposal.depends_on.append(resolved)
