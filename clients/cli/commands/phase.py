"""`cw phase`: groups of tasks, reviewed as one diff; `cw phase detail` has an agent propose a
phase's tasks (a planning run: clients/cli/planning_runs.py).

The store refuses an edit or a delete while a live agent works on one of the phase's tasks
(FAILED_PRECONDITION, AGENT_WORKING).
"""

from __future__ import annotations

from pathlib import Path

import click

from clients.cli.app import CwGroup, Session, console, message_dict, pass_session
from clients.cli.diff_views import print_diff
from clients.cli.planning_runs import phase_subject, shortcut
from clients.cli.views import escape, merged_line
from cw.store.v1 import phase_pb2


@click.group(cls=CwGroup)
def phase() -> None:
    """Phases: groups of tasks, reviewed as one diff."""


@phase.command("add")
@click.argument("initiative_id")
@click.argument("name")
@click.option("--after", multiple=True, help="a phase this one waits for (repeatable; a bad one creates nothing)")
@pass_session
def phase_add(session: Session, initiative_id: str, name: str, after: tuple[str, ...]) -> None:
    created = session.store.create_phase(initiative_id, name, list(after))
    session.show(created, lambda: console().print(f"phase {created.name} [dim]{created.id}[/]"))


@phase.command("approve")
@click.argument("phase_id")
@pass_session
def phase_approve(session: Session, phase_id: str) -> None:
    """Queue the phase: it starts once the phases it waits for are merged."""
    approved = session.orchestrator.approve_phase(phase_id)
    session.show(approved, lambda: console().print(f"phase {approved.name} approved"))


@phase.command("diff")
@click.argument("phase_id")
@click.option("--stat", is_flag=True, help="only the files and their line counts")
@pass_session
def phase_diff(session: Session, phase_id: str, stat: bool) -> None:
    """The phase's work, with the open review comments under their lines."""
    diff = session.orchestrator.phase_diff(phase_id)
    comments = session.store.list_comments(phase_id, resolved=False)
    shown = {**message_dict(diff), "comments": [message_dict(c) for c in comments]}
    session.show(shown, lambda: print_diff(diff.projects, stat, comments))


@phase.command("merge")
@click.argument("phase_id")
@pass_session
def phase_merge(session: Session, phase_id: str) -> None:
    """Merge a reviewed phase into the initiative branch; a conflict goes to a merge agent, and the
    phase is merged once it resolved it."""
    merged = session.orchestrator.merge_phase(phase_id)
    if merged.status != phase_pb2.PHASE_STATUS_COMPLETED:
        session.show(
            merged, lambda: console().print(f"phase {escape(merged.name)} not merged yet: {escape(merged.reason)}")
        )
        return
    projects = session.store.initiative_projects(merged.initiative_id) if merged.merge_commits else []
    session.show(merged, lambda: console().print(merged_line(merged, {p.id: p.name for p in projects})))


@phase.command("edit")
@click.argument("phase_id")
@click.option("--name")
@click.option("--content")
@click.option("--content-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_session
def phase_edit(
    session: Session, phase_id: str, name: str | None, content: str | None, content_file: Path | None
) -> None:
    """Change a phase (refused while an agent works on one of its tasks)."""
    content = content_file.read_text() if content_file is not None else content
    edited = session.store.update_phase(phase_id, name=name, content=content)
    session.show(edited, lambda: console().print(f"phase {escape(edited.name)} changed"))


@phase.command("delete")
@click.argument("row_id", metavar="PHASE_ID")
@pass_session
def phase_delete(session: Session, row_id: str) -> None:
    """Delete a phase with its tasks and comments (refused while an agent works on one of them)."""
    session.store.delete_phase(row_id)
    session.show({"deleted": row_id}, lambda: console().print(f"phase {row_id} deleted"))


phase_detail = shortcut(
    "detail", "detail", "PHASE", phase_subject, "An agent proposes the phase's tasks, with their dependencies."
)
phase.add_command(phase_detail)
