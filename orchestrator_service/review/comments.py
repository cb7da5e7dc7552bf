"""Pure decisions about review comments: a revision's prompt, the comments a revision resolves, the
comments a review agent reports, a review agent's prompt. No I/O: the callers read the diff and the
comments, and write what these return."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cw.store.v1 import review_comment_pb2, task_pb2
from cw_edge import diffs
from orchestrator_service.agents.claude_outcome import clip

LINE_TYPES = {
    diffs.ADDED: review_comment_pb2.REVIEW_LINE_TYPE_ADDED,
    diffs.REMOVED: review_comment_pb2.REVIEW_LINE_TYPE_REMOVED,
    diffs.CONTEXT: review_comment_pb2.REVIEW_LINE_TYPE_CONTEXT,
}
# What one review agent may leave (its words are cut to the store's limits, never refused).
MAX_AGENT_COMMENTS = 50
BODY_BYTES = 16 * 1024
PATH_BYTES = 1024
# How much of a phase's diff a review agent's prompt shows.
DIFF_PROMPT_BYTES = 256 * 1024


@dataclass(frozen=True)
class ProjectFiles:
    """One project's part of a phase's diff: its files by their path in the project's worktree."""

    project_id: str
    name: str
    files: Mapping[str, diffs.FileDiff]


def locate(
    projects: Sequence[ProjectFiles], file_path: str, project_id: str = ""
) -> tuple[ProjectFiles, str, diffs.FileDiff] | None:
    """The project and file a comment names. With its project: the path in that project. Without
    (a review agent that did not say, a comment stored before migration 0008): the one project
    whose diff holds the path, else `PROJECT/PATH`, the project's name before its path."""
    if project_id:
        projects = [p for p in projects if p.project_id == project_id]
    exact = [(p, file_path, p.files[file_path]) for p in projects if file_path in p.files]
    if exact:
        return exact[0] if len(exact) == 1 or project_id else None
    for project in projects:
        inner = file_path.removeprefix(f"{project.name}/")
        if inner != file_path and inner in project.files:
            return project, inner, project.files[inner]
    return None


def _hunk_of(projects: Sequence[ProjectFiles], comment: review_comment_pb2.ReviewComment) -> str:
    found = locate(projects, comment.file_path, comment.project_id)
    removed = comment.line_type == review_comment_pb2.REVIEW_LINE_TYPE_REMOVED
    place = found[2].find(comment.line_number, removed) if found is not None else None
    return place[0].text() if place is not None else ""


def _project_name(projects: Sequence[ProjectFiles], comment: review_comment_pb2.ReviewComment) -> str:
    found = locate(projects, comment.file_path, comment.project_id)
    return found[0].name if found is not None else ""


def line_type_name(value: int) -> str:
    return str(review_comment_pb2.ReviewLineType.Name(value)).removeprefix("REVIEW_LINE_TYPE_").lower()  # type: ignore[arg-type]


def revision_prompt(
    phase_name: str, comments: Sequence[review_comment_pb2.ReviewComment], files: Sequence[ProjectFiles]
) -> str:
    """A revision task's description: every open comment with its id, project, file, line and the
    hunk around it, and how to report the comments addressed."""
    parts = [
        f"Address the review of phase {phase_name!r}: a person read its diff and left the comments below.",
        "Change the code so that each comment is taken care of, and commit in each project directory.",
        "Each comment names its project and a path in that project (in its directory, named after the project).",
        'Report the ids of the comments you addressed next to `status` in your signal file: "resolved_comments": '
        '["ID", ...]. A comment you did not address stays open for the next review.',
    ]
    for comment in comments:
        where = f"{comment.file_path}:{comment.line_number} ({line_type_name(comment.line_type)})"
        project = _project_name(files, comment)
        where += f" in project {project}" if project else ""
        parts += ["", f"## Comment {comment.id} on {where}, by {comment.author or 'you'}", "", comment.body]
        hunk = _hunk_of(files, comment)
        if hunk:
            parts += ["", "```diff", hunk, "```"]
    return "\n".join(parts) + "\n"


def resolved_by(task: task_pb2.Task, report: Mapping[str, Any]) -> list[str]:
    """The comments an agent reported addressed, among those its revision was given."""
    reported = report.get("resolved_comments")
    if not isinstance(reported, list):
        return []
    given = set(task.review_comment_ids)
    found: list[str] = []
    for item in reported:
        if isinstance(item, str) and item in given and item not in found:
            found.append(item)
    return found


def _line(item: Mapping[str, Any]) -> int:
    value = item.get("line")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _named_project(projects: Sequence[ProjectFiles], item: Mapping[str, Any]) -> str:
    """The project id an item's `"project"` names (by name or id); "" when it names none."""
    named = item.get("project")
    if not isinstance(named, str) or not named:
        return ""
    return next((p.project_id for p in projects if named in (p.name, p.project_id)), "")


def place(
    projects: Sequence[ProjectFiles], path: str, line: int, removed: bool = False, project_id: str = ""
) -> tuple[str, str, str] | None:
    """Where a comment on `path:line` goes, checked as a person's comment is (clients/cli/diff_views.py,
    `place_in_diff`): its project's id, its path in that project and the line's kind; or None when
    the path is not a file of the diff (absolute, with a `..` part, unknown, or in several projects'
    diffs without naming one) or the line is not in it."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "" in parts or line <= 0:
        return None
    target = locate(projects, path, project_id)
    at = target[2].find(line, removed) if target is not None else None
    if target is None or at is None:
        return None
    return target[0].project_id, target[1], at[1].kind


def from_report(
    report: Mapping[str, Any], phase_id: str, author: str, files: Sequence[ProjectFiles]
) -> list[review_comment_pb2.ReviewComment]:
    """A review agent's `review_comments` as comments by it: the project is the one `"project"`
    names, else the one whose diff holds the file; the line type comes from the diff, `"side":
    "old"` names a removed line. An agent's comment gets the same checks as a person's (`place`):
    one on a file or a line outside the diff is left out, like any unusable item."""
    items = report.get("review_comments")
    if not isinstance(items, list):
        return []
    found = []
    for item in items[:MAX_AGENT_COMMENTS]:
        if not isinstance(item, dict):
            continue
        path, body, line = item.get("file"), item.get("body"), _line(item)
        if (
            not isinstance(path, str)
            or len(path.encode()) > PATH_BYTES
            or not isinstance(body, str)
            or not body.strip()
        ):
            continue
        where = place(files, path, line, item.get("side") == "old", _named_project(files, item))
        if where is None:
            continue
        found.append(
            review_comment_pb2.ReviewComment(
                phase_id=phase_id,
                project_id=where[0],
                file_path=where[1],
                line_number=line,
                line_type=LINE_TYPES[where[2]],
                body=clip(body, BODY_BYTES),
                author=author,
            )
        )
    return found


def review_prompt(unified_diffs: Iterable[tuple[str, str]]) -> str:
    """What a review agent reads after its task: the phase's diff per project, and how to answer."""
    parts = ["", "## The diff to review"]
    budget = DIFF_PROMPT_BYTES
    for project, unified in unified_diffs:
        shown = clip(unified, max(budget, 0)) if budget > 0 else ""
        budget -= len(unified.encode())
        parts += ["", f"### Project {project}", "```diff", shown.rstrip("\n") or "(no changes)", "```"]
    parts += [
        "",
        "## How to answer",
        "You review: leave comments, do not commit. Next to `status` in your signal file, report "
        '"review_comments": [{"project": "NAME", "file": "path/in/the/project", "line": 12, '
        '"body": "what to change and why"}]. `project` is the name of the project whose diff shows the file '
        "(it may be left out when one project changed); `file` is its path in that project, as its diff shows "
        'it; `line` is the line number on the new side; add "side": "old" for a removed line.',
    ]
    return "\n".join(parts) + "\n"
