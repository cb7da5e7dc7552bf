"""The processes a test started, found by where they point: their working directory, their command
line or their environment names a directory of the test's (its tmp_path, the session's base
temporary directory). Agents run in their own sessions so that they outlive the orchestrator, and
a shim started just before its orchestrator was killed writes its pid file after the test looked:
only the process table finds every one of them.

Linux only (/proc), like the rest of the suite.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# How long processes that are ending may take before they count as left behind.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class Found:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"{self.pid}: {self.command}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _naming(root: Path) -> re.Pattern[bytes]:
    """`root` as a whole path or a path's start: `/tmp/t0` is not `/tmp/t01`."""
    return re.compile(re.escape(str(root.resolve()).encode()) + rb"(?=[/\0:]|$)")


def _points_into(pid: int, naming: re.Pattern[bytes]) -> bool:
    try:
        cwd = os.readlink(PROC / str(pid) / "cwd").encode()
    except OSError:
        cwd = b""
    if naming.match(cwd):
        return True
    return any(naming.search(_read(PROC / str(pid) / name)) for name in ("cmdline", "environ"))


def _is_zombie(pid: int) -> bool:
    """A process that ended and waits for its parent to read its status: it holds nothing."""
    status = _read(PROC / str(pid) / "stat")
    return b") Z " in status or not status


def processes_within(root: Path) -> list[Found]:
    """Live processes (this one and its ancestors aside) that point into `root`."""
    naming = _naming(root)
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        if _points_into(pid, naming) and not _is_zombie(pid):
            command = _read(entry / "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(Found(pid, command[:300]))
    return found


def end_processes_within(root: Path, settle_seconds: float = SETTLE_SECONDS) -> list[Found]:
    """SIGKILLs every process that points into `root` until none is left (new ones may appear
    meanwhile: a shim forking its agent); returns those it had to end."""
    ended: dict[int, Found] = {}
    deadline = time.monotonic() + settle_seconds
    while True:
        found = processes_within(root)
        if not found:
            return list(ended.values())
        if time.monotonic() > deadline:
            raise AssertionError("processes would not end: " + "; ".join(map(str, found)))
        for process in found:
            ended.setdefault(process.pid, process)
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        time.sleep(0.05)


def left_behind(root: Path, settle_seconds: float = SETTLE_SECONDS) -> list[Found]:
    """The processes that still point into `root` once those ending had `settle_seconds` to end."""
    deadline = time.monotonic() + settle_seconds
    while True:
        found = processes_within(root)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
