"""Process identity from /proc: a pid alone can be reused, a pid with its start time cannot."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which the process started (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None  # exited, not yet reaped: dead for our purposes
    return int(fields[19])


def is_alive(pid: int, started: int) -> bool:
    return pid > 0 and start_time(pid) == started


def group_is_ours(pid: int, started: int) -> bool:
    """Whether signalling group `pid` can only reach the process recorded with `started` or what it
    left behind: the leader still runs with that start time, or no process has that pid now."""
    current = start_time(pid)
    return current is None or current == started


def signal_group(pgid: int, signum: signal.Signals) -> bool:
    """Signals the agent's whole process group (the shim leads its own session)."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True
