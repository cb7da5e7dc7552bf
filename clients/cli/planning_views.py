"""How the CLI shows planning: pure functions from messages to rich renderables (unit-tested with
messages made by hand). Proposals read as a tree of phases and their tasks with what each waits
for; edits of existing rows read as diffs of their text."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from clients.sdk.calls import enum_name
from cw.store.v1 import chat_session_pb2, page_pb2, proposal_pb2, task_pb2

PAGE, PHASE, TASK = (
    proposal_pb2.PROPOSAL_TARGET_TYPE_PAGE,
    proposal_pb2.PROPOSAL_TARGET_TYPE_PHASE,
    proposal_pb2.PROPOSAL_TARGET_TYPE_TASK,
)


@dataclass(frozen=True)
class Existing:
    """A row a proposal names or changes: its name and its text now (content or description)."""

    name: str
    text: str = ""


def text_diff(before: str, after: str, name: str) -> Text:
    """A unified diff of two texts, coloured; "(no change)" when they are equal."""
    lines = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), f"{name} (now)", f"{name} (proposed)", lineterm="", n=2
        )
    )
    shown = Text()
    for line in lines or ["(no change to the text)"]:
        style = (
            "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line[:2] == "@@" else ""
        )
        shown.append(line + "\n", style=style)
    return shown


def page_tree(pages: Sequence[page_pb2.Page]) -> Tree:
    """Pages under their parents, the root first; each with its id and size."""
    children: dict[str, list[page_pb2.Page]] = {}
    for page in pages:
        children.setdefault(page.parent_page_id, []).append(page)
    roots = children.get("", [])
    tree = Tree(f"[bold]{escape(roots[0].title)}[/] [dim]{roots[0].id}[/]" if roots else "(no root page)")

    def add(branch: Tree, parent_id: str) -> None:
        for page in sorted(children.get(parent_id, []), key=lambda row: (row.sort_order, row.title)):
            size = f"{len(page.content.splitlines())} lines" if page.content else "empty"
            add(branch.add(f"{escape(page.title)} [dim]{page.id} · {size}[/]"), page.id)

    if roots:
        add(tree, roots[0].id)
    return tree


def _label(proposal: proposal_pb2.Proposal, existing: Mapping[str, Existing]) -> str:
    kind = enum_name(proposal_pb2.ProposalTargetType, proposal.target_type)
    status = enum_name(proposal_pb2.ProposalStatus, proposal.status)
    if proposal.target_id:
        now = existing.get(proposal.target_id, Existing(proposal.target_id)).name
        what = f"edit of {kind} {escape(now)}" + (
            f" -> [bold]{escape(proposal.title)}[/]" if proposal.title != now else ""
        )
    else:
        what = f"new {kind} [bold]{escape(proposal.title)}[/]"
    extras = []
    if proposal.target_type == TASK and proposal.priority:
        extras.append(enum_name(task_pb2.TaskPriority, proposal.priority))
    if proposal.target_type == TASK and proposal.category:
        extras.append(enum_name(task_pb2.TaskCategory, proposal.category))
    extra = f" ({', '.join(extras)})" if extras else ""
    key = f"key {escape(proposal.key)} · " if proposal.key else ""
    return f"{what}{extra} [dim]{key}{status} · {proposal.id}[/]"


@dataclass
class _Names:
    """Names for references: keys of the same report, else existing rows, else the raw text."""

    proposals: Sequence[proposal_pb2.Proposal]
    existing: Mapping[str, Existing]

    def of(self, proposal: proposal_pb2.Proposal, reference: str) -> str:
        for other in self.proposals:
            if other.key == reference and other.report_id == proposal.report_id and other.agent_id == proposal.agent_id:
                return other.title
        found = self.existing.get(reference)
        return found.name if found is not None else reference

    def after(self, proposal: proposal_pb2.Proposal) -> str:
        if not proposal.depends_on:
            return ""
        names = ", ".join(escape(self.of(proposal, reference)) for reference in proposal.depends_on)
        return f" [yellow]after: {names}[/]"


def _body(proposal: proposal_pb2.Proposal, existing: Mapping[str, Existing]) -> RenderableType | None:
    """An edit's diff against the row's text now; a new row's summary."""
    if proposal.target_id and proposal.content:
        now = existing.get(proposal.target_id, Existing(proposal.target_id))
        return text_diff(now.text, proposal.content, now.name)
    if proposal.summary:
        return Text(proposal.summary, style="dim")
    return None


def _add(branch: Tree, proposal: proposal_pb2.Proposal, names: _Names) -> Tree:
    node = branch.add(_label(proposal, names.existing) + names.after(proposal))
    body = _body(proposal, names.existing)
    if body is not None:
        node.add(body)
    return node


def _belongs(task: proposal_pb2.Proposal, phase: proposal_pb2.Proposal) -> bool:
    """A task proposal in a phase proposal: by its key (same report), or by the phase's row."""
    if not task.parent:
        return False
    same_report = task.report_id == phase.report_id and task.agent_id == phase.agent_id
    return (same_report and task.parent == phase.key) or task.parent in (phase.target_id, phase.entity_id)


def proposals_tree(proposals: Sequence[proposal_pb2.Proposal], existing: Mapping[str, Existing]) -> RenderableType:
    """Proposed phases with their proposed tasks under them (tasks for existing phases under those
    phases' names), then pages; edits with their diffs, dependencies by name."""
    if not proposals:
        return Text("no proposals")
    names = _Names(proposals, existing)
    tree = Tree(f"[bold]{len(proposals)} proposal{'s' if len(proposals) != 1 else ''}[/]")
    tasks = [p for p in proposals if p.target_type == TASK]
    placed: set[str] = set()
    for phase in (p for p in proposals if p.target_type == PHASE):
        node = _add(tree, phase, names)
        for task in tasks:
            if task.id not in placed and _belongs(task, phase):
                _add(node, task, names)
                placed.add(task.id)
    by_phase: dict[str, list[proposal_pb2.Proposal]] = {}
    for task in tasks:
        if task.id not in placed:
            by_phase.setdefault(task.parent, []).append(task)
    for parent, grouped in by_phase.items():
        node = tree.add(f"phase {escape(names.of(grouped[0], parent)) if parent else '(none)'}")
        for task in grouped:
            _add(node, task, names)
    for page in (p for p in proposals if p.target_type == PAGE):
        _add(tree, page, names)
    return tree


def proposal_detail(proposal: proposal_pb2.Proposal, existing: Mapping[str, Existing]) -> RenderableType:
    names = _Names([proposal], existing)
    lines = [Text.from_markup(_label(proposal, existing) + names.after(proposal))]
    if proposal.parent:
        lines.append(Text(f"in: {names.of(proposal, proposal.parent)}"))
    if proposal.summary:
        lines.append(Text(proposal.summary))
    if proposal.target_id:
        body = _body(proposal, existing)
        if body is not None:
            lines.append(body)  # type: ignore[arg-type]
    elif proposal.content:
        lines.append(Text(proposal.content))
    return Group(*lines)


def chat_transcript(
    messages: Sequence[chat_session_pb2.ChatMessage], change_sets: Mapping[str, chat_session_pb2.ChangeSet]
) -> RenderableType:
    """Each message under its author; a reply with the change set it applied and whether it stands."""
    shown: list[RenderableType] = []
    for message in messages:
        role = enum_name(chat_session_pb2.ChatRole, message.role)
        heading = Text(f"{'you' if role == 'user' else 'agent' if role == 'assistant' else role}:", style="bold")
        shown += [heading, Text(message.content)]
        if message.change_set_id:
            change_set = change_sets.get(message.change_set_id)
            state = enum_name(chat_session_pb2.ChangeSetStatus, change_set.status) if change_set else "?"
            count = len(change_set.entries) if change_set else 0
            shown.append(Text(f"  changes {message.change_set_id}: {count} {state}", style="dim"))
    return Group(*shown) if shown else Text("no messages yet")
