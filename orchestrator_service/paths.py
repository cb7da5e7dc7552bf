"""Names the orchestrator turns into paths or git arguments, checked before use.

The store validates what clients write, but the orchestrator trusts no stored string as a path:
every directory derives from its own workspace and an id or a name that passes these checks.
"""

from __future__ import annotations

import re
from pathlib import Path

# Ids the store issues: URL-safe characters, never a leading `-` or `_`.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# One path component: no separator, no leading `.` or `-`, no control characters.
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


class UnsafeName(ValueError):
    """A stored value that must not become a path or a git argument."""


def safe_id(value: str, what: str = "id") -> str:
    if not _ID.fullmatch(value):
        raise UnsafeName(f"{what} {value!r} is not an id this orchestrator accepts")
    return value


def safe_component(value: str, what: str = "name") -> str:
    if not _COMPONENT.fullmatch(value) or ".." in value:
        raise UnsafeName(f"{what} {value!r} is not a single safe path component")
    return value


def within(root: Path, path: Path) -> bool:
    """Whether `path` (resolved) lies inside `root` (resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def redact(text: str, root: Path) -> str:
    """Messages people see name places in the workspace relative to it, never by absolute path."""
    for form in {str(root), str(root.resolve())}:
        text = text.replace(form + "/", "").replace(form, "<workspace>")
    return text
