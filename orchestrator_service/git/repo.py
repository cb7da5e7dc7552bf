"""Plain git commands on one repository; every ref-changing caller holds the repository's lock."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

GIT_IDENTITY = ["-c", "user.name=cw", "-c", "user.email=cw@localhost", "-c", "commit.gpgsign=false"]
_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


class GitError(RuntimeError):
    pass


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def git(cwd: Path, *args: str, check: bool = True) -> GitResult:
    completed = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, env=_ENV, check=False
    )
    result = GitResult(completed.returncode, completed.stdout, completed.stderr)
    if check and completed.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {completed.stderr.strip()}")
    return result


_locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)
_locks_guard = threading.Lock()


def repository_lock(path: Path) -> threading.RLock:
    """One lock per repository for commands that change refs, the index or worktrees."""
    with _locks_guard:
        return _locks[str(path.resolve())]
