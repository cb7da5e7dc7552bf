"""Pure decisions about review comments: a revision's prompt, the comments a revision resolves, the
comments a review agent reports, a review agent's prompt. No I/O: the callers read the diff and the
comments, and write what these return."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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

# Per project name, its diff's files by path.
ProjectFiles = Mapping[str, Mapping[str, diffs.FileDiff]]


def locate(files: ProjectFiles, file_path: str) -> diffs.FileDiff | None:
    """The file a comment names: a path of a project's diff, or `PROJECT/PATH` when several
    projects' diffs hold that path."""
    for project, by_path in files.items():
        found = by_path.get(file_path) or by_path.get(file_path.removeprefix(f"{project}/"))
        if found is not None:
            return found
    return None


def _hunk_of(files: ProjectFiles, comment: review_comment_pb2.ReviewComment) -> str:
    found = locate(files, comment.file_path)
    removed = comment.line_type == review_comment_pb2.REVIEW_LINE_TYPE_REMOVED
    place = found.find(comment.line_number, removed) if found is not None else None
    return place[0].text() if place is not None else ""


def line_type_name(value: int) -> str:
    return str(review_comment_pb2.ReviewLineType.Name(value)).removeprefix("REVIEW_LINE_TYPE_").lower()  # type: ignore[arg-type]


def revision_prompt(phase_name: str, comments: Sequence[review_comment_pb2.ReviewComment], files: ProjectFiles) -> str:
    """A revision task's description: every open comment with its id, file, line and the hunk
    around it, and how to report the comments addressed."""
    parts = [
        f"Address the review of phase {phase_name!r}: a person read its diff and left the comments below.",
        "Change the code so that each comment is taken care of, and commit in each project directory.",
        'Report the ids of the comments you addressed next to `status` in your signal file: "resolved_comments": '
        '["ID", ...]. A comment you did not address stays open for the next review.',
    ]
    for comment in comments:
        where = f"{comment.file_path}:{comment.line_number} ({line_type_name(comment.line_type)})"
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


def place(files: ProjectFiles, path: str, line: int, removed: bool = False) -> tuple[str, str] | None:
    """Where a comment on `path:line` goes, checked as a person's comment is (clients/cli/review.py,
    `place_in_diff`): the path as stored (the project's name first when several projects' diffs
    hold it) and the line's kind, or None when the path is not a file of the diff (absolute, with a
    `..` part, unknown, or in several projects' diffs without naming one) or the line is not in it."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "" in parts or line <= 0:
        return None
    holding = []
    for project, by_path in files.items():
        name = path if path in by_path else path.removeprefix(f"{project}/")
        if name in by_path:
            holding.append((project, name, by_path[name]))
    if not holding or (len(holding) > 1 and not any(path.startswith(f"{p}/") for p, _, _ in holding)):
        return None
    project, name, found = next((h for h in holding if path.startswith(f"{h[0]}/")), holding[0])
    at = found.find(line, removed)
    if at is None:
        return None
    return (f"{project}/{name}" if len(files) > 1 else name), at[1].kind


def from_report(
    report: Mapping[str, Any], phase_id: str, author: str, files: ProjectFiles
) -> list[review_comment_pb2.ReviewComment]:
    """A review agent's `review_comments` as comments by it: the line type comes from the diff,
    `"side": "old"` names a removed line. An agent's comment gets the same checks as a person's
    (`place`): one on a file or a line outside the diff is left out, like any unusable item."""
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
        where = place(files, path, line, removed=item.get("side") == "old")
        if where is None:
            continue
        found.append(
            review_comment_pb2.ReviewComment(
                phase_id=phase_id,
                file_path=where[0],
                line_number=line,
                line_type=LINE_TYPES[where[1]],
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
        '"review_comments": [{"file": "path/in/the/diff", "line": 12, "body": "what to change and why"}]. '
        '`line` is the line number on the new side; add "side": "old" for a removed line. Prefix the path with '
        "the project's name when the phase changes several projects.",
    ]
    return "\n".join(parts) + "\n"
