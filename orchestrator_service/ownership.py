"""One owner at a time: a workspace is held by one live orchestrator.

An exclusive `flock` on `<workspace>/.lock`, held for the life of the process, released by the
kernel however the process ends (kill -9 included), so a stale lock never blocks a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO


class Held(Exception):
    """Another live process holds the resource; the message says which."""


def hold(lock_path: Path, what: str, listen: str) -> IO[str]:
    """Takes the lock or raises Held naming the holder. Keep the returned file open."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "{}"
        handle.close()
        try:
            known = json.loads(holder)
        except ValueError:
            known = {}
        pid, where = known.get("pid", "?"), known.get("listen", "?")
        raise Held(f"{what} is held by another live process (pid {pid}, listening on {where})") from None
    record(handle, listen)
    return handle


def record(handle: IO[str], listen: str) -> None:
    """Says who holds the lock, for the next process that finds it held."""
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "listen": listen}))
    handle.flush()
