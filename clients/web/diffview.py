"""A phase's diff as rows a page shows: per file its counts, its lines highlighted by Pygments
(server-side, each line escaped), unified or side by side, with review comments under their
lines. Pure: what the orchestrator answered in, rows out.

Highlighting runs once per file over the file's new and old sides (one lexer pass each), so a
token that spans lines (a docstring) is coloured right and a 5,000-line diff costs two passes,
not 5,000 (bench/web_pages.py measures it against GetPhaseDiff).
"""

from __future__ import annotations

import enum
import html
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import review_comment_pb2
from cw_edge import diffs

# Files with more lines than this start collapsed; past FILE_PAGE_LINES a file is paged.
COLLAPSE_LINES = 400
FILE_PAGE_LINES = 2000
# The rows a diff page renders at first: later files are listed and loaded when opened, so a big
# diff's page costs about what its first ROW_BUDGET lines cost (bench/web_pages.py).
ROW_BUDGET = 1000
CHANGE_NAMES = {
    orch.FILE_CHANGE_ADDED: "added",
    orch.FILE_CHANGE_MODIFIED: "modified",
    orch.FILE_CHANGE_DELETED: "deleted",
    orch.FILE_CHANGE_RENAMED: "renamed",
}


class Side(enum.StrEnum):
    OLD = "old"
    NEW = "new"


@dataclass(frozen=True)
class Row:
    """One printed line of a file's diff: a hunk header (kind "hunk") or a line with its numbers."""

    kind: str  # "hunk", diffs.ADDED, diffs.REMOVED, diffs.CONTEXT
    old: int | None
    new: int | None
    html: str  # highlighted and escaped, without the leading +/-/space
    comments: tuple[review_comment_pb2.ReviewComment, ...] = ()

    @property
    def side(self) -> Side:
        return Side.OLD if self.kind == diffs.REMOVED else Side.NEW

    @property
    def number(self) -> int:
        return (self.old if self.kind == diffs.REMOVED else self.new) or 0


@dataclass(frozen=True)
class SplitRow:
    """A side-by-side row: the old line on the left, the new one on the right (either may be None)."""

    left: Row | None
    right: Row | None
    hunk: str = ""


@dataclass
class FileView:
    project: str
    path: str  # as review comments name it (project-prefixed when the diff spans projects)
    shown_path: str
    additions: int
    deletions: int
    change: str
    binary: bool = False
    rows: list[Row] = field(default_factory=list)
    total_rows: int = 0
    page: int = 0
    pages: int = 1
    deferred: bool = False

    @property
    def collapsed(self) -> bool:
        return self.total_rows > COLLAPSE_LINES

    @property
    def anchor(self) -> str:
        return "file-" + "".join(c if c.isalnum() else "-" for c in self.path)


@lru_cache(maxsize=256)
def _lexer_for(path: str) -> Lexer:
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def _css_class(token: _TokenType) -> str:
    while token not in STANDARD_TYPES and token.parent is not None:
        token = token.parent
    return STANDARD_TYPES.get(token, "")


def highlight_lines(path: str, lines: list[str]) -> list[str]:
    """Each line as escaped HTML with Pygments' short classes, lexed as one text."""
    if not lines:
        return []
    out: list[list[str]] = [[]]
    for token, value in _lexer_for(path).get_tokens("\n".join(lines) + "\n"):
        css = _css_class(token)
        for index, piece in enumerate(value.split("\n")):
            if index:
                out.append([])
            if piece:
                text = html.escape(piece)
                out[-1].append(f'<span class="{css}">{text}</span>' if css else text)
    return ["".join(parts) for parts in out[: len(lines)]]


def _file_rows(path: str, steps: Sequence[diffs.Step]) -> tuple[Row, ...]:
    old_side = [s.line.text[1:] for s in steps if s.line and s.line.kind != diffs.ADDED]
    new_side = [s.line.text[1:] for s in steps if s.line and s.line.kind != diffs.REMOVED]
    old_html, new_html = iter(highlight_lines(path, old_side)), iter(highlight_lines(path, new_side))
    rows: list[Row] = []
    for step in steps:
        line = step.line
        if step.starts_hunk:
            rows.append(Row("hunk", None, None, html.escape(step.text)))
        elif line is not None:
            shown_old = next(old_html) if line.kind != diffs.ADDED else ""
            shown_new = next(new_html) if line.kind != diffs.REMOVED else ""
            rows.append(Row(line.kind, line.old, line.new, shown_new or shown_old))
    return tuple(rows)


@dataclass(frozen=True)
class _Parsed:
    steps: dict[str, tuple[diffs.Step, ...]]
    binary: frozenset[str]


@lru_cache(maxsize=32)
def _parsed(unified: str) -> _Parsed:
    """A project's diff split by file. Cached by the diff's text: a phase's diff is the same text
    until its branch moves, and people open the same diff again and again."""
    by_file: dict[str, list[diffs.Step]] = {}
    binary: set[str] = set()
    for step in diffs.walk(unified):
        if step.text.startswith("Binary files "):
            binary.add(_binary_name(step.text))
        elif step.path and (step.starts_hunk or step.line is not None):
            by_file.setdefault(step.path, []).append(step)
    return _Parsed({path: tuple(steps) for path, steps in by_file.items()}, frozenset(binary))


@lru_cache(maxsize=512)
def _highlighted(unified: str, path: str, page: int) -> tuple[Row, ...]:
    """A page of a file's rows, highlighted once per diff text (Pygments is the cost of the page)."""
    steps = _parsed(unified).steps.get(path, ())
    return _file_rows(path, steps[page * FILE_PAGE_LINES : (page + 1) * FILE_PAGE_LINES])


def _binary_name(text: str) -> str:
    """`Binary files a/x.png and b/x.png differ` -> `x.png` (the new side, else the old)."""
    names = text.removeprefix("Binary files ").removesuffix(" differ").split(" and ")
    chosen = names[-1] if names[-1] != "/dev/null" else names[0]
    return chosen[2:] if chosen[:2] in ("a/", "b/") else chosen


def _with_comments(
    rows: Iterable[Row], path: str, comments: dict[tuple[str, int, Side], list[review_comment_pb2.ReviewComment]]
) -> list[Row]:
    if not comments:
        return list(rows)
    return [
        Row(r.kind, r.old, r.new, r.html, tuple(comments.get((path, r.number, r.side), ()))) if r.kind != "hunk" else r
        for r in rows
    ]


def comments_by_place(
    comments: Iterable[review_comment_pb2.ReviewComment],
) -> dict[tuple[str, int, Side], list[review_comment_pb2.ReviewComment]]:
    placed: dict[tuple[str, int, Side], list[review_comment_pb2.ReviewComment]] = {}
    for comment in comments:
        side = Side.OLD if comment.line_type == review_comment_pb2.REVIEW_LINE_TYPE_REMOVED else Side.NEW
        placed.setdefault((comment.file_path, comment.line_number, side), []).append(comment)
    return placed


def file_views(
    diff: orch.GetPhaseDiffResponse | orch.GetInitiativeDiffResponse,
    comments: Iterable[review_comment_pb2.ReviewComment] = (),
    focus: str = "",
    page: int = 0,
    budget: int = ROW_BUDGET,
) -> list[FileView]:
    """Every file of every project's diff. Without `focus`, files are rendered in order while their
    rows fit in `budget`; the others are deferred (listed, loaded when opened). With `focus`, only
    that file is rendered: page `page` of its rows (FILE_PAGE_LINES a page)."""
    placed = comments_by_place(comments)
    several = len(diff.projects) > 1
    views: list[FileView] = []
    left = budget
    for project in diff.projects:
        parsed = _parsed(project.unified_diff)
        for entry in project.files:
            stored = f"{project.project_name}/{entry.path}" if several else entry.path
            view = FileView(
                project.project_name,
                stored,
                entry.path,
                entry.additions,
                entry.deletions,
                CHANGE_NAMES.get(entry.change, "changed"),
                binary=entry.path in parsed.binary,
            )
            view.total_rows = len(parsed.steps.get(entry.path, ()))
            view.pages = max(1, -(-view.total_rows // FILE_PAGE_LINES))
            shown = stored == focus if focus else min(view.total_rows, FILE_PAGE_LINES) <= left
            view.deferred = not shown
            if shown:
                view.page = min(max(page, 0), view.pages - 1) if focus else 0
                rows = _highlighted(project.unified_diff, entry.path, view.page)
                view.rows = _with_comments(rows, stored, placed)
                left -= len(rows)
            views.append(view)
    return views


def side_by_side(rows: list[Row]) -> Iterator[SplitRow]:
    """Rows paired: a run of removed lines faces the run of added lines after it; context faces itself."""
    removed: list[Row] = []
    added: list[Row] = []

    def flush() -> Iterator[SplitRow]:
        for index in range(max(len(removed), len(added))):
            yield SplitRow(
                removed[index] if index < len(removed) else None, added[index] if index < len(added) else None
            )
        removed.clear()
        added.clear()

    for row in rows:
        if row.kind == diffs.REMOVED:
            if added:
                yield from flush()
            removed.append(row)
        elif row.kind == diffs.ADDED:
            added.append(row)
        else:
            yield from flush()
            yield SplitRow(None, None, row.html) if row.kind == "hunk" else SplitRow(row, row)
    yield from flush()
