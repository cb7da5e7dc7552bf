"""Unified diffs (as `git diff` prints them) read line by line: which lines a diff adds, removes or
shows as context, with their numbers on each side.

Shared by the orchestrator (the hunk around each review comment in a revision's prompt, the line
type of an agent's comment) and the CLI (the line type of `cw review comment`, comments shown
under their lines in `cw phase diff`), so both read a diff the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

ADDED, REMOVED, CONTEXT = "added", "removed", "context"
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffLine:
    kind: str  # ADDED, REMOVED or CONTEXT
    old: int | None  # its number in the old file (None for an added line)
    new: int | None  # its number in the new file (None for a removed line)
    text: str  # the line as the diff prints it, with its leading `+`, `-` or space


@dataclass
class Hunk:
    header: str
    lines: list[DiffLine] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([self.header, *(line.text for line in self.lines)])


@dataclass
class FileDiff:
    path: str
    hunks: list[Hunk] = field(default_factory=list)

    def find(self, number: int, removed: bool = False) -> tuple[Hunk, DiffLine] | None:
        """The diff line numbered `number`: on the new side (an added or context line), or with
        `removed` (or when the new side has no such line) a removed line of the old side."""
        sides = ("old",) if removed else ("new", "old")
        for side in sides:
            for hunk in self.hunks:
                for line in hunk.lines:
                    if getattr(line, side) == number and (side == "new" or line.kind == REMOVED):
                        return hunk, line
        return None


def _path(header: str) -> str:
    """`+++ b/src/a.py` -> `src/a.py`; git quotes unusual names."""
    name = header[4:].strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name[2:] if name[:2] in ("a/", "b/") else name


@dataclass(frozen=True)
class Step:
    """One printed line of a diff: the file it belongs to ("" before the first), and inside a hunk
    what it is (None for headers)."""

    path: str
    text: str
    line: DiffLine | None = None
    starts_hunk: bool = False


def walk(unified: str) -> Iterator[Step]:
    """Every line of the diff as printed, in order, with its file and its numbers on each side."""
    path, old_name = "", ""
    in_hunk = False
    old = new = 0
    for text in unified.splitlines():
        line: DiffLine | None = None
        starts = False
        if text.startswith("diff --git "):
            in_hunk = False
        elif text.startswith("--- ") and not in_hunk:
            old_name = _path(text)
        elif text.startswith("+++ ") and not in_hunk:
            name = _path(text)
            path = old_name if name == "/dev/null" else name
        elif match := _HUNK.match(text):
            old, new, in_hunk, starts = int(match.group(1)), int(match.group(2)), True, True
        elif in_hunk and text.startswith("+"):
            line, new = DiffLine(ADDED, None, new, text), new + 1
        elif in_hunk and text.startswith("-"):
            line, old = DiffLine(REMOVED, old, None, text), old + 1
        elif in_hunk and text[:1] in (" ", ""):
            line, old, new = DiffLine(CONTEXT, old, new, text), old + 1, new + 1
        yield Step(path, text, line, starts)


def parse(unified: str) -> list[FileDiff]:
    """Every file of the diff with its hunks; lines outside hunks (headers, binary notes) skipped."""
    files: dict[str, FileDiff] = {}
    for step in walk(unified):
        if step.starts_hunk:
            files.setdefault(step.path, FileDiff(step.path)).hunks.append(Hunk(step.text))
        elif step.line is not None and step.path in files:
            files[step.path].hunks[-1].lines.append(step.line)
    return list(files.values())


def by_path(unified: str) -> dict[str, FileDiff]:
    return {file.path: file for file in parse(unified)}
