"""`cw review`: comments on a phase's diff, and sending the phase back with them.

Where a comment goes, and `cw phase diff` showing the open comments under their lines, are
clients/cli/diff_views.py's.
"""

from __future__ import annotations

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.diff_views import place_in_diff
from clients.cli.views import escape, short, table
from cw.store.v1 import review_comment_pb2


def split_place(place: str) -> tuple[str, int]:
    """`src/a.py:12` -> ("src/a.py", 12)."""
    path, _, line = place.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        raise click.BadParameter(f"wants FILE:LINE (a line number from 1), got {place!r}", param_hint="FILE:LINE")
    return path, int(line)


@click.group(cls=CwGroup)
def review() -> None:
    """Review comments on a phase's diff, and sending the phase back with them."""


@review.command("comment")
@click.argument("phase_id")
@click.argument("place", metavar="FILE:LINE")
@click.argument("body")
@click.option("--old", is_flag=True, help="LINE is a line number of the old side (a removed line)")
@click.option("--project", default="", help="the project (name or id) whose FILE it is, when several diffs hold it")
@pass_session
def review_comment(session: Session, phase_id: str, place: str, body: str, *, old: bool, project: str) -> None:
    """Comment on a line of the phase's diff; FILE is a path in its project (as the diff shows it),
    and the line's type (added, removed, context) comes from the diff."""
    path, line = split_place(place)
    found = place_in_diff(session.orchestrator.phase_diff(phase_id), path, line, old, project)
    created = session.store.create_comment(phase_id, found.path, line, found.kind, body, project_id=found.project_id)
    where = f"{found.project_name}: {found.path}:{line}"
    session.show(created, lambda: console().print(f"comment [dim]{created.id}[/] on {escape(where)} ({found.kind})"))


@review.command("list")
@click.argument("phase_id")
@click.option("--all", "everything", is_flag=True, help="resolved comments too")
@pass_session
def review_list(session: Session, phase_id: str, everything: bool) -> None:
    comments = session.store.list_comments(phase_id, None if everything else False)

    def render() -> None:
        projects = {p.id: p.name for p in session.store.list_projects()}
        grid = table("ID", "PROJECT", "PLACE", "TYPE", "AUTHOR", "STATE", "COMMENT")
        for c in comments:
            kind = review_comment_pb2.ReviewLineType.Name(c.line_type).removeprefix("REVIEW_LINE_TYPE_").lower()
            state = "resolved" if c.resolved else "open"
            project = escape(projects.get(c.project_id, c.project_id))
            place = escape(f"{c.file_path}:{c.line_number}")
            grid.add_row(c.id, project, place, kind, escape(c.author), state, escape(short(c.body)))
        console().print(grid)

    session.show(comments, render)


def _resolution(name: str, resolved: bool) -> click.Command:
    @click.argument("comment_id")
    @pass_session
    def command(session: Session, comment_id: str) -> None:
        changed = session.store.resolve_comment(comment_id, resolved)
        session.show(changed, lambda: console().print(f"comment {changed.id} {name}d"))

    command.__doc__ = f"{name.capitalize()} a comment."
    return review.command(name)(command)


review_resolve = _resolution("resolve", True)
review_unresolve = _resolution("unresolve", False)


@review.command("delete")
@click.argument("comment_id")
@pass_session
def review_delete(session: Session, comment_id: str) -> None:
    session.store.delete_comment(comment_id)
    session.show({"deleted": comment_id}, lambda: console().print(f"comment {comment_id} deleted"))


@review.command("request-changes")
@click.argument("phase_id")
@pass_session
def review_request_changes(session: Session, phase_id: str) -> None:
    """Send a phase in review back: a revision task gets every open comment; the phase is reviewed
    again once its work is merged."""
    phase = session.orchestrator.request_changes(phase_id)
    session.show(
        phase,
        lambda: console().print(f"phase {escape(phase.name)} sent back: a revision task addresses the open comments"),
    )
