"""What the store does when the disk under its database fails it: a full disk, or a damaged file.

- A full disk (SQLITE_FULL; PostgreSQL's disk_full) fails one write, which rolls back whole: the
  caller is answered RESOURCE_EXHAUSTED saying so (docs/api.md keeps INTERNAL for bugs), nothing of
  the request is written, and the next write once space is back succeeds.
- A damaged database (SQLITE_CORRUPT, SQLITE_NOTADB; PostgreSQL's data_corrupted, index_corrupted):
  found by `quick_check` at start, the store does not start (server.py: one line saying what to
  do); found by any statement while running, the store refuses every later write (DATA_LOSS),
  saying the same. A write into a damaged file could spread the damage, and the person who
  repairs it wants it as it was found.

`failure_of` is pure: it reads the exception a database call raised.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from enum import StrEnum
from pathlib import Path

log = logging.getLogger("cw.store")

# SQLite's primary result codes (https://www.sqlite.org/rescode.html), as Python's sqlite3 names them.
_SQLITE_CODES = {sqlite3.SQLITE_FULL: "full", sqlite3.SQLITE_CORRUPT: "damaged", sqlite3.SQLITE_NOTADB: "damaged"}
# PostgreSQL's SQLSTATEs: disk_full; data_corrupted, index_corrupted.
_POSTGRES_STATES = {"53100": "full", "XX001": "damaged", "XX002": "damaged"}
# How long the start-up check may take: quick_check reads every page, minutes on a large file.
QUICK_CHECK_SECONDS = 10.0
# SQLite calls the progress handler every this many virtual-machine instructions.
PROGRESS_STEPS = 10_000


class Failure(StrEnum):
    DISK_FULL = "full"
    DAMAGED = "damaged"


def failure_of(error: BaseException) -> Failure | None:
    """The disk failure behind a database error (SQLAlchemy wraps the driver's in `.orig`), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_CODES:
            return Failure(_SQLITE_CODES[code & 0xFF])
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state in _POSTGRES_STATES:
            return Failure(_POSTGRES_STATES[state])
        current = getattr(current, "orig", None) or current.__cause__
    return None


# What callers are told: no path (its log names the database), as for every error of the store.
DISK_FULL_MESSAGE = (
    "the disk holding the store's database is full: nothing of this request was written; "
    "free some space there (the store's log names the database) and try again"
)


def damaged_message(found: str) -> str:
    return (
        f"the store's database is damaged ({found}); the store refuses writes so as not to spread the damage. "
        "Stop it, keep a copy of the file, then restore it from a backup or recover it "
        "(sqlite3 store.db .recover | sqlite3 recovered.db) and start the store on the result"
    )


def quick_check(path: Path, seconds: float = QUICK_CHECK_SECONDS) -> str | None:
    """What SQLite's `PRAGMA quick_check` finds wrong with the file (None: nothing, or it did not
    finish within `seconds`, which is logged: a start never waits minutes on a large file)."""
    if not path.exists():
        return None
    deadline = time.monotonic() + seconds
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=seconds)
    try:
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
        rows = [str(row[0]) for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.OperationalError as error:
        if "interrupted" in str(error):
            log.warning("quick_check of %s stopped after %.0fs: the file was not checked whole", path, seconds)
            return None
        raise
    except sqlite3.DatabaseError as error:
        return str(error)
    finally:
        connection.close()
    return None if rows == ["ok"] else "; ".join(rows)
