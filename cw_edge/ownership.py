"""One owner at a time: a database is served by one live store, a workspace by one live orchestrator.

An exclusive, non-blocking `flock` on a lock file, held for the life of the process. The kernel
drops it when the process ends, however it ends, so a SIGKILLed service never leaves a stale lock
behind; the file's content (the holder's pid and address) only feeds the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path


class Held(Exception):
    """Another live process holds the resource; the message is one line naming it."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']}, listening on {holder['address']}"
    return "it has not said who it is yet"


@dataclass
class ProcessLock:
    path: Path
    fd: int

    @classmethod
    def acquire(cls, path: Path, what: str, holder_kind: str) -> ProcessLock:
        """Takes the lock on `path` or raises Held: "`what` is held by another `holder_kind` (...)"."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # Never truncated before the lock is ours, never deleted: another process may be reading it.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Held(f"{what} is held by another {holder_kind} ({holder})") from None
        return cls(path, fd)

    def announce(self, address: str) -> None:
        """Records who holds the lock, for the message the next process prints."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "address": address}).encode(), 0)

    def release(self) -> None:
        os.close(self.fd)
