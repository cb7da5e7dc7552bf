"""`cw review`: comments on a phase's diff, and sending the phase back with them.

A comment's line type (added, removed, context) is read from the diff itself (cw_edge/diffs.py,
the same reading the orchestrator uses for a revision's prompt); `cw phase diff` shows the open
comments under their lines (`annotated`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click
import grpc

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import escape, short, table
from clients.sdk import InvalidArgumentError
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import review_comment_pb2
from cw_edge import diffs

if TYPE_CHECKING:
    from rich.text import Text

LINE_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def split_place(place: str) -> tuple[str, int]:
    """`src/a.py:12` -> ("src/a.py", 12)."""
    path, _, line = place.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        raise click.BadParameter(f"wants FILE:LINE (a line number from 1), got {place!r}", param_hint="FILE:LINE")
    return path, int(line)


@dataclass(frozen=True)
class Place:
    """Where a comment goes: a project, a path in that project's worktree, and the line's type."""

    project_id: str
    project_name: str
    path: str
    kind: str


def place_in_diff(diff: orch.GetPhaseDiffResponse, path: str, line: int, old: bool = False, project: str = "") -> Place:
    """The project and file a comment names, as the diff shows that line; InvalidArgumentError
    when it does not. The path is the project's own (`inflection/__init__.py` in project
    `inflection` is that file); `PROJECT/PATH` names a project when several diffs hold PATH, as
    `--project` does."""
    chosen = [d for d in diff.projects if project in ("", d.project_id, d.project_name)]
    if not chosen:
        raise _refused(f"project {project!r} has no diff in this phase")
    holding = [(d, path, diffs.by_path(d.unified_diff).get(path)) for d in chosen]
    exact = [(d, name, found) for d, name, found in holding if found is not None]
    prefixed = [
        (
            d,
            path.removeprefix(f"{d.project_name}/"),
            diffs.by_path(d.unified_diff).get(path.removeprefix(f"{d.project_name}/")),
        )
        for d in chosen
        if path.startswith(f"{d.project_name}/")
    ]
    candidates = exact or [(d, name, found) for d, name, found in prefixed if found is not None]
    if not candidates:
        raise _refused(f"{path!r} is not in the phase's diff")
    if len(candidates) > 1:
        names = ", ".join(d.project_name for d, _, _ in candidates)
        raise _refused(f"{path!r} is in several projects' diffs ({names}): name one with --project")
    project_diff, name, found = candidates[0]
    assert found is not None
    place = found.find(line, removed=old)
    if place is None:
        raise _refused(f"line {line} ({'old' if old else 'new'} side) of {path!r} is not in the phase's diff")
    return Place(project_diff.project_id, project_diff.project_name, name, place[1].kind)


def _refused(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, message)


def annotated(
    unified: str, project: orch.ProjectDiff, comments: Iterable[review_comment_pb2.ReviewComment]
) -> list[str]:
    """The project's diff lines with each of its comments after the line it is about, as `  >> ...`
    lines. A comment is the project's by its project_id; one stored without (before migration
    0008 could tell its project) by its path, with or without the project's name before it."""
    by_place: dict[tuple[str, int, bool], list[review_comment_pb2.ReviewComment]] = {}
    for comment in comments:
        if comment.project_id and comment.project_id != project.project_id:
            continue
        removed = comment.line_type == review_comment_pb2.REVIEW_LINE_TYPE_REMOVED
        paths = {comment.file_path}
        if not comment.project_id:
            paths.add(comment.file_path.removeprefix(f"{project.project_name}/"))
        for path in paths:
            by_place.setdefault((path, comment.line_number, removed), []).append(comment)
    shown: list[str] = []
    for step in diffs.walk(unified):
        shown.append(step.text)
        line = step.line
        if line is None:
            continue
        removed = line.kind == diffs.REMOVED
        for comment in by_place.get((step.path, (line.old if removed else line.new) or 0, removed), []):
            shown.append(f"  >> [{comment.id}] {comment.author or 'you'}: {comment.body}")
    return shown


def render_lines(lines: Iterable[str]) -> Text:
    from rich.text import Text

    out = Text()
    for line in lines:
        style = "yellow" if line.startswith("  >> ") else LINE_STYLES.get(line[:1], "")
        out.append(line + "\n", style=style)
    return out


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
