"""Accepting and dismissing proposals: what planning agents suggested becomes pages, phases, tasks
and their dependencies, in one transaction recorded as one change set (so it can be reverted).

A proposal's references (`parent`: a task's phase, a page's parent page; `depends_on`) are keys of
its own report or existing ids. When accepted, a key resolves to the proposal of the same agent and
report with that key (one accepted now, or before: then its `entity_id`); anything else must be a
row of the right kind in the same initiative. Everything is checked before the first write where
it can be (dismissed, stale, unresolvable), and the rows' own checks (cycles, trees, limits of a
change set) refuse the rest while the transaction is still open: all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from store_service.db.models import Base, ChangeSet, Page, Phase, PhaseDependency, Proposal, Task, TaskDependency
from store_service.domain.errors import FailedPrecondition, InvalidArgument
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.services import change_sets
from store_service.services.change_sets import Change

# Named in a refusal, at most.
MAX_LISTED = 10
MODELS: dict[str, type[Base]] = {"page": Page, "phase": Phase, "task": Task}
EDGES: dict[str, tuple[str, type[Base], str, str]] = {
    "phase": ("phase_dependency", PhaseDependency, "phase_id", "depends_on_phase_id"),
    "task": ("task_dependency", TaskDependency, "task_id", "depends_on_task_id"),
}
# Pages first (tasks and phases never point at pages), then phases, then tasks.
ORDER = ("page", "phase", "task")


@dataclass(frozen=True)
class Accepted:
    change_set: ChangeSet | None
    proposals: list[Proposal]


def describe(proposal: Proposal) -> str:
    label = proposal.key or proposal.title
    return f"proposal {proposal.id!r} ({label[:60]})"


def _refusal(reason: str, what: str, proposals: Sequence[Proposal]) -> FailedPrecondition:
    listed = proposals[:MAX_LISTED]
    return FailedPrecondition(
        f"{what}: {', '.join(describe(p) for p in listed)}",
        reason,
        proposals=",".join(p.id for p in listed),
    )


def _load(uow: SqlAlchemyUnitOfWork, proposal_ids: Sequence[str]) -> list[Proposal]:
    if not proposal_ids:
        raise InvalidArgument.of("proposal_ids", "name at least one proposal")
    ordered = list(dict.fromkeys(proposal_ids))
    proposals = [uow.proposals.get(proposal_id) for proposal_id in ordered]
    if len({proposal.initiative_id for proposal in proposals}) > 1:
        raise InvalidArgument.of("proposal_ids", "all proposals must belong to one initiative")
    return proposals


def dismiss(uow: SqlAlchemyUnitOfWork, proposal_ids: Sequence[str]) -> list[Proposal]:
    proposals = _load(uow, proposal_ids)
    accepted = [proposal for proposal in proposals if proposal.status == "accepted"]
    if accepted:
        raise _refusal("PROPOSAL_ACCEPTED", "accepted proposals are not dismissed (revert their change set)", accepted)
    for proposal in proposals:
        proposal.status = "dismissed"
    uow.session.flush()
    return proposals


def accept(uow: SqlAlchemyUnitOfWork, proposal_ids: Sequence[str], chat_session_id: str | None = None) -> Accepted:
    proposals = _load(uow, proposal_ids)
    dismissed = [proposal for proposal in proposals if proposal.status == "dismissed"]
    if dismissed:
        raise _refusal("PROPOSAL_DISMISSED", "dismissed proposals are not accepted", dismissed)
    chosen = [proposal for proposal in proposals if proposal.status == "pending"]
    if not chosen:
        earlier = proposals[0].change_set_id
        return Accepted(uow.session.get(ChangeSet, earlier) if earlier else None, proposals)
    _refuse_stale(uow, chosen)
    if chat_session_id is not None and uow.chat_sessions.get(chat_session_id).initiative_id != chosen[0].initiative_id:
        raise FailedPrecondition(
            "chat_session_id: the session is about another initiative", "INITIATIVE_MISMATCH", field="chat_session_id"
        )
    batch = _Batch(uow, chosen)
    batch.check_references()
    entries = batch.apply()
    change_set = uow.chat_sessions.create_change_set(
        chat_session_id=chat_session_id,
        initiative_id=chosen[0].initiative_id,
        summary=f"accepted {len(chosen)} proposal{'s' if len(chosen) != 1 else ''}",
        entries=entries,
    )
    for proposal in chosen:
        proposal.status, proposal.change_set_id, proposal.entity_id = "accepted", change_set.id, batch.made[proposal.id]
    uow.session.flush()
    return Accepted(change_set, proposals)


def _refuse_stale(uow: SqlAlchemyUnitOfWork, chosen: Iterable[Proposal]) -> None:
    """A target that is gone, or changed since the agent read it (its `target_update_time`)."""
    stale = []
    for proposal in chosen:
        if not proposal.target_id:
            continue
        target: Any = uow.session.get(MODELS[proposal.target_type], proposal.target_id)
        gone = target is None or target.initiative_id != proposal.initiative_id
        read = proposal.target_update_time
        if gone or (read is not None and target.update_time != read):
            stale.append(proposal)
    if stale:
        raise _refusal("PROPOSAL_STALE", "the target changed since the agent read it, or is gone", stale)


@dataclass
class _Batch:
    """The chosen proposals, applied kind by kind; `made` maps each to the row it made or changed."""

    uow: SqlAlchemyUnitOfWork
    chosen: list[Proposal]
    made: dict[str, str] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def _by_key(self, proposal: Proposal, key: str) -> Proposal | None:
        """The proposal of the same agent and report with this key (chosen now, or accepted)."""
        for other in self.chosen:
            if other.key == key and other.agent_id == proposal.agent_id and other.report_id == proposal.report_id:
                return other
        found = self.uow.proposals.find_by_agent_id_and_status(proposal.agent_id, "accepted")
        return next((p for p in found if p.key == key and p.report_id == proposal.report_id), None)

    def _existing(self, proposal: Proposal, kind: str, row_id: str) -> bool:
        row = self.uow.session.get(MODELS[kind], row_id)
        return row is not None and getattr(row, "initiative_id", None) == proposal.initiative_id

    def _unresolved(self, proposal: Proposal, name: str, reference: str, kind: str) -> FailedPrecondition:
        keyed = self._by_key(proposal, reference)
        if keyed is None:
            keyed = next(
                (
                    p
                    for p in self.uow.proposals.find_by_agent_id_and_status(proposal.agent_id)
                    if p.key == reference and p.report_id == proposal.report_id
                ),
                None,
            )
        why = (
            f"names {describe(keyed)}, which is neither accepted nor among those accepted now"
            if keyed is not None
            else f"is no key of its report and no {kind} of the initiative"
        )
        return FailedPrecondition(
            f"{describe(proposal)}: {name} {reference!r} {why}",
            "UNRESOLVED_REFERENCE",
            proposals=proposal.id,
            field=name,
        )

    def _check(self, proposal: Proposal, name: str, reference: str, kind: str) -> None:
        keyed = self._by_key(proposal, reference)
        if keyed is not None and keyed.target_type == kind:
            return
        if self._existing(proposal, kind, reference):
            return
        raise self._unresolved(proposal, name, reference, kind)

    def check_references(self) -> None:
        """Every reference resolves (before anything is written)."""
        for proposal in self.chosen:
            if proposal.parent and proposal.target_type in ("task", "page"):
                kind = "phase" if proposal.target_type == "task" else "page"
                self._check(proposal, "parent", proposal.parent, kind)
            elif proposal.target_type == "task" and not proposal.target_id:
                raise FailedPrecondition(
                    f"{describe(proposal)}: a new task needs its phase (`parent`)",
                    "UNRESOLVED_REFERENCE",
                    proposals=proposal.id,
                    field="parent",
                )
            for reference in proposal.depends_on or []:
                self._check(proposal, "depends_on", reference, proposal.target_type)

    def resolve(self, proposal: Proposal, reference: str) -> str:
        keyed = self._by_key(proposal, reference)
        if keyed is None:
            return reference
        return self.made.get(keyed.id) or keyed.entity_id or reference

    def apply(self) -> list[dict[str, Any]]:
        for kind in ORDER:
            of_kind = [proposal for proposal in self.chosen if proposal.target_type == kind]
            for proposal in self._parents_first(of_kind):
                self._apply_one(proposal)
            for proposal in of_kind:
                self._add_edges(proposal)
        return self.entries

    def _parents_first(self, proposals: list[Proposal]) -> list[Proposal]:
        """Pages whose parent is another page proposal of the batch come after it."""
        ordered: list[Proposal] = []
        pending = list(proposals)
        while pending:
            ready = [p for p in pending if not self._waits_for_parent(p, pending)]
            if not ready:
                raise _refusal("PARENT_CYCLE", "these proposals are each other's parents", pending)
            ordered += ready
            pending = [p for p in pending if p not in ready]
        return ordered

    def _waits_for_parent(self, proposal: Proposal, pending: list[Proposal]) -> bool:
        if proposal.target_type != "page" or not proposal.parent:
            return False
        keyed = self._by_key(proposal, proposal.parent)
        return keyed is not None and keyed is not proposal and keyed in pending

    def _apply_one(self, proposal: Proposal) -> None:
        values = self._values(proposal)
        action = "update" if proposal.target_id else "create"
        if action == "update" and not values:
            self.made[proposal.id] = proposal.target_id or ""
        else:
            entry = change_sets.apply_change(self.uow, Change(proposal.target_type, action, proposal.target_id, values))
            self.entries.append(entry)
            self.made[proposal.id] = entry["entity_id"]

    def _values(self, proposal: Proposal) -> dict[str, Any]:
        """The row values the proposal sets: all of them for a create, what it changes for a target."""
        parent = self.resolve(proposal, proposal.parent) if proposal.parent else None
        text = proposal.content or proposal.summary
        if proposal.target_type == "page":
            if parent is None and not proposal.target_id:
                parent = self.uow.pages.get_or_create_root_page(proposal.initiative_id).id
            values = {"title": proposal.title, "content": proposal.content, "parent_page_id": parent}
        elif proposal.target_type == "phase":
            values = {"name": proposal.title, "content": text}
        else:
            values = {
                "name": proposal.title,
                "description": text,
                "phase_id": parent,
                "priority": proposal.priority,
                "category": proposal.category,
            }
        if not proposal.target_id:
            return {"initiative_id": proposal.initiative_id, **{k: v for k, v in values.items() if v is not None}}
        stored = self.uow.session.get(MODELS[proposal.target_type], proposal.target_id)
        return {k: v for k, v in values.items() if v is not None and getattr(stored, k) != v}

    def _add_edges(self, proposal: Proposal) -> None:
        if proposal.target_type not in EDGES or not proposal.depends_on:
            return
        entity_type, model, dependent, dependency = EDGES[proposal.target_type]
        source = self.made[proposal.id]
        for reference in proposal.depends_on:
            target = self.resolve(proposal, reference)
            criteria = (getattr(model, dependent) == source, getattr(model, dependency) == target)
            if self.uow.session.scalar(select(model.id).where(*criteria)) is not None:  # type: ignore[attr-defined]
                continue
            try:
                entry = change_sets.apply_change(
                    self.uow, Change(entity_type, "create", None, {dependent: source, dependency: target})
                )
            except FailedPrecondition as error:
                if error.reason != "DEPENDENCY_CYCLE":
                    raise
                raise FailedPrecondition(
                    f"{describe(proposal)}: depends_on {reference!r} would close a dependency cycle",
                    "DEPENDENCY_CYCLE",
                    proposals=proposal.id,
                ) from error
            self.entries.append(entry)
