"""Pure: what a planning run is shown (`Material`), as its prompt and as the `RunView` its report
is read against. Each mode's prompt is documented in README ("Planning modes")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cw.store.v1 import chat_session_pb2, initiative_pb2, page_pb2, phase_pb2, task_pb2
from orchestrator_service.planning.report import RunView, Shown

Row = page_pb2.Page | phase_pb2.Phase | task_pb2.Task

WHAT_TO_DO = {
    "discuss": (
        "Talk the initiative through with the person. Ask what you need to know with the questions "
        "protocol; you are resumed with the answers. Once things are decided, record the decisions: "
        "propose edits of the pages below (target_type page, target_id, the page's whole new markdown as "
        "content) or new pages (with `parent`, a page id or key; the root page when omitted)."
    ),
    "plan": (
        "Propose the phases that deliver this initiative: for each a key, a title, a summary and content "
        "(markdown: what the phase delivers and how to tell it is done), and depends_on naming the phases it "
        "must wait for (keys of your report or ids of existing phases). Phases are reviewed and merged one "
        "diff at a time, so make each one a coherent step. Propose no tasks: each phase is detailed later."
    ),
    "detail": (
        "Propose the tasks of the phase under 'Target': for each a key, a title, content (the instructions "
        "the agent who executes it gets: what to change and how to check it), priority (low, medium, high), "
        "category (execute unless it is research or verify) and depends_on (keys of your tasks or ids of "
        "existing ones). Tasks run in parallel unless they depend on each other; each is merged into the "
        "phase branch when done. `phase` may be left out: it is this phase."
    ),
    "refine": (
        "Improve the row under 'Target': propose an edit of it (target_type and target_id as shown, the "
        "whole new title and content). You may also propose new tasks for its phase, or changes to rows "
        "shown below."
    ),
    "chat": (
        "A person is talking with you about the row under 'Target'. Answer their newest messages: your "
        "answer is the `summary` of your report, shown to them as your reply. Propose the changes they ask "
        "for (an edit of the target: target_type and target_id as shown; new tasks for its phase); they are "
        "applied at once, and the person can undo them."
    ),
}

REPORT_FORMAT = """## How to report
Do not change the code: the project directories hold the initiative branch for you to read, and
nothing you commit there is merged. When you are done, write one JSON object to the file named by
$CW_SIGNAL_FILE:

{"status": "done", "summary": "what you propose and why", "proposals": [
  {"key": "p1", "target_type": "phase", "title": "...", "summary": "...", "content": "...", "depends_on": []},
  {"key": "t1", "target_type": "task", "phase": "p1", "title": "...", "content": "...",
   "depends_on": ["t0"], "priority": "high", "category": "execute"},
  {"target_type": "page", "target_id": "PAGE_ID", "title": "...", "content": "..."}]}

Keys are yours, unique in the report; `phase`, `parent` and `depends_on` name a key of the same
report or an id shown above; `target_id` names a row shown above to change (leave it out to create
one). Or write {"status": "questions", "questions": [{"id": "q1", "question": "..."}]} to ask the
person first, or {"status": "error", "error": "..."} if you cannot do it.
"""


@dataclass
class Material:
    """Everything a planning run is shown, read from the store just before it starts."""

    mode: str
    task: task_pb2.Task
    initiative: initiative_pb2.Initiative
    pages: list[page_pb2.Page] = field(default_factory=list)
    phases: list[phase_pb2.Phase] = field(default_factory=list)
    # phase id -> ids of the phases it waits for; the same for tasks.
    phase_edges: Mapping[str, Sequence[str]] = field(default_factory=dict)
    tasks: list[task_pb2.Task] = field(default_factory=list)
    task_edges: Mapping[str, Sequence[str]] = field(default_factory=dict)
    target_kind: str = ""
    target: Row | None = None
    chat_session_id: str = ""
    messages: list[chat_session_pb2.ChatMessage] = field(default_factory=list)

    @property
    def instructions(self) -> str:
        return WHAT_TO_DO["chat" if self.chat_session_id else self.mode]

    def default_phase(self) -> str:
        if isinstance(self.target, phase_pb2.Phase):
            return self.target.id
        if isinstance(self.target, task_pb2.Task):
            return self.target.phase_id
        return ""

    def view(self) -> RunView:
        shown: dict[str, Shown] = {}
        for kind, rows in (("page", self.pages), ("phase", self.phases), ("task", self.tasks)):
            for row in rows:
                shown[row.id] = Shown(kind, row.id, _name(row), row.update_time.ToJsonString())
        if self.target is not None:
            shown[self.target.id] = Shown(
                self.target_kind, self.target.id, _name(self.target), self.target.update_time.ToJsonString()
            )
        newest = [message.id for message in self.messages if message.role == chat_session_pb2.CHAT_ROLE_USER]
        return RunView(shown, self.default_phase(), self.chat_session_id, newest[-1] if newest else "")


def _name(row: Row) -> str:
    return row.title if isinstance(row, page_pb2.Page) else row.name


def _indented(text: str) -> list[str]:
    return [f"    {line}" if line else "" for line in text.strip().splitlines()]


def _after(edges: Mapping[str, Sequence[str]], row_id: str, names: Mapping[str, str]) -> str:
    waits = [names.get(other, other) for other in edges.get(row_id, ())]
    return f"; after: {', '.join(waits)}" if waits else ""


def _page_lines(pages: list[page_pb2.Page]) -> list[str]:
    lines = ["## Pages", "(the initiative's living spec, markdown; the root page has no parent)"]
    for page in pages:
        where = "root" if not page.parent_page_id else f"under {page.parent_page_id}"
        lines += ["", f"### {page.title} (page {page.id}, {where})", *(_indented(page.content) or ["    (empty)"])]
    return lines if pages else ["## Pages", "(none yet)"]


def _row_lines(
    heading: str, kind: str, rows: Sequence[phase_pb2.Phase | task_pb2.Task], edges: Mapping[str, Sequence[str]]
) -> list[str]:
    """Phases or tasks: name, id, status, what each waits for, then its text indented."""
    names = {row.id: row.name for row in rows}
    lines = [heading]
    for row in rows:
        if isinstance(row, phase_pb2.Phase):
            status, text = phase_pb2.PhaseStatus.Name(row.status), row.content
        else:
            status, text = task_pb2.TaskStatus.Name(row.status), row.description
        status = status.split("_STATUS_")[-1].lower()
        lines.append(f"- {row.name} ({kind} {row.id}, {status}{_after(edges, row.id, names)})")
        lines += _indented(text)
    return lines if rows else [heading, "(none yet)"]


def _target_lines(material: Material) -> list[str]:
    target = material.target
    if target is None:
        return []
    text = target.content if isinstance(target, page_pb2.Page | phase_pb2.Phase) else target.description
    return ["## Target", f"{material.target_kind} {target.id}: {_name(target)}", *(_indented(text) or ["    (empty)"])]


def _conversation_lines(messages: list[chat_session_pb2.ChatMessage]) -> list[str]:
    if not messages:
        return []
    lines = ["## Conversation so far (newest last)"]
    for message in messages:
        role = chat_session_pb2.ChatRole.Name(message.role).removeprefix("CHAT_ROLE_").lower()
        lines += [f"{role}:", *_indented(message.content)]
    return lines


def planning_prompt(material: Material) -> str:
    task = material.task
    parts = [
        f"# {material.mode.capitalize()}: {task.name}",
        "",
        f"You are a planning agent of cw (mode {material.mode}) for the initiative {material.initiative.name!r}.",
        material.instructions,
    ]
    for section in (
        _target_lines(material),
        _page_lines(material.pages),
        _row_lines("## Phases", "phase", material.phases, material.phase_edges),
        _row_lines("## Tasks of that phase", "task", material.tasks, material.task_edges) if material.tasks else [],
        _conversation_lines(material.messages),
    ):
        if section:
            parts += ["", *section]
    if task.description.strip() and not material.chat_session_id:
        parts += ["", "## From the person", task.description.strip()]
    parts += ["", REPORT_FORMAT]
    return "\n".join(parts)
