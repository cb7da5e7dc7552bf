"""How the CLI reads and shows a diff (a phase's, an initiative's): the files or the diff, with the
open review comments under their lines (`print_diff`, `annotated`), and where a comment on
`FILE:LINE` goes (`place_in_diff`).

A line's type (added, removed, context) is read from the diff itself (cw_edge/diffs.py, the same
reading the orchestrator uses for a revision's prompt). Importing this module imports neither rich
nor the messages it reads: each is imported when first used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click
import grpc

from clients.cli.app import console
from clients.sdk import InvalidArgumentError
from clients.sdk.lazy import lazy_modules
from cw_edge import diffs

if TYPE_CHECKING:
    from rich.text import Text

    from cw.orchestrator.v1 import orchestrator_pb2 as orch
    from cw.store.v1 import review_comment_pb2
else:
    (orch,) = lazy_modules("cw.orchestrator.v1", "orchestrator_pb2")
    (review_comment_pb2,) = lazy_modules("cw.store.v1", "review_comment_pb2")

LINE_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def print_diff(
    projects: Sequence[orch.ProjectDiff], stat: bool, comments: Sequence[review_comment_pb2.ReviewComment] = ()
) -> None:
    """Per project: the files and their counts (`stat`), or the diff, coloured on a terminal."""
    for project_diff in projects:
        console().print(
            f"[bold]{project_diff.project_name}[/] {project_diff.base_commit[:10]}..{project_diff.head_commit[:10]}"
        )
        if stat:
            for f in project_diff.files:
                change = orch.FileChange.Name(f.change).removeprefix("FILE_CHANGE_").lower()
                console().print(f"  {f.path}  [green]+{f.additions}[/] [red]-{f.deletions}[/]  {change}")
        elif comments:
            lines = annotated(project_diff.unified_diff, project_diff, comments)
            if console().is_terminal:
                console().print(render_lines(lines), end="")
            else:
                click.echo("\n".join(lines))
        elif console().is_terminal:
            from rich.syntax import Syntax

            console().print(Syntax(project_diff.unified_diff, "diff", theme="ansi_dark", background_color="default"))
        else:
            click.echo(project_diff.unified_diff, nl=False)


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
