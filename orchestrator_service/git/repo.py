"""Plain git commands on one repository; every ref-changing caller holds the repository's lock.

No user text ever reaches git as an option: positional arguments follow `--` (or `--end-of-options`)
where git takes them, refs are passed fully qualified (`refs/heads/...`), and callers check names
first (orchestrator_service/paths.py, `check_branch`). Repository hooks never run, and only plain
transports are allowed (no `ext::`).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GIT_CONFIG = [
    "-c",
    "user.name=cw",
    "-c",
    "user.email=cw@localhost",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "protocol.ext.allow=never",
]
_ENV = {
    **os.environ,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
}
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,255}")


class GitError(RuntimeError):
    pass


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def git(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> GitResult:
    """`env`: variables added for this command only (a checkpoint's own index file)."""
    completed = subprocess.run(
        ["git", *GIT_CONFIG, *args], cwd=cwd, capture_output=True, text=True, env={**_ENV, **(env or {})}, check=False
    )
    result = GitResult(completed.returncode, completed.stdout, completed.stderr)
    if check and completed.returncode != 0:
        raise GitError(f"git {args[0]} failed: {completed.stderr.strip()}")
    return result


def check_branch(name: str) -> str:
    """A branch name taken from data: a plain, valid git branch name that cannot read as an option."""
    valid = (
        _BRANCH.fullmatch(name)
        and not name.startswith(("-", "/", "refs/"))
        and not name.endswith(("/", ".lock", "."))
        and ".." not in name
        and "//" not in name
        and "/." not in name
        and name != "HEAD"
    )
    if not valid:
        raise GitError(f"{name!r} is not a branch name cw uses")
    return name


def head_ref(branch: str) -> str:
    return f"refs/heads/{check_branch(branch)}"


_locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)
_locks_guard = threading.Lock()


def repository_lock(path: Path) -> threading.RLock:
    """One lock per repository for commands that change refs, the index or worktrees."""
    with _locks_guard:
        return _locks[str(path.resolve())]
