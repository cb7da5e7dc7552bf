"""SQLite engines with the connection settings the store relies on.

Writes run in `BEGIN IMMEDIATE` transactions: in WAL mode a deferred transaction that reads and then
writes can fail with SQLITE_BUSY, and taking the write lock up front also makes commit order equal
event-sequence order, which `WatchEvents` depends on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.pool import QueuePool

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
DEFAULT_SYNCHRONOUS: Synchronous = "FULL"
BUSY_TIMEOUT_MS = 30_000
# Pooled connections move between worker threads, one thread at a time.
_THREADS_SHARED = {"check_same_thread": False}


def _configure(engine: Engine, begin: str, synchronous: Synchronous, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            f"busy_timeout={busy_timeout_ms}",
            f"synchronous={synchronous}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # On the driver's connection itself: SQLAlchemy's statement machinery adds nothing here.
        connection.connection.driver_connection.execute(begin)

    return engine


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def create_writer_engine(path: Path, synchronous: Synchronous = DEFAULT_SYNCHRONOUS) -> Engine:
    """One connection: the store has a single writer thread."""
    engine = create_engine(
        sqlite_url(path), poolclass=QueuePool, pool_size=1, max_overflow=0, connect_args=_THREADS_SHARED
    )
    return _configure(engine, "BEGIN IMMEDIATE", synchronous)


def create_reader_engine(
    path: Path, pool_size: int, synchronous: Synchronous = DEFAULT_SYNCHRONOUS, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> Engine:
    """`busy_timeout_ms` 0: a read that would wait for a lock fails at once with SQLITE_BUSY (see
    `is_busy`) instead of blocking its thread."""
    engine = create_engine(
        sqlite_url(path),
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0,
        connect_args=_THREADS_SHARED,
    )
    return _configure(engine, "BEGIN", synchronous, busy_timeout_ms)


def is_busy(error: BaseException) -> bool:
    """SQLITE_BUSY (or one of its extended codes), raised by the driver or wrapped by SQLAlchemy."""
    original = error.orig if isinstance(error, exc.DBAPIError) else error
    code = getattr(original, "sqlite_errorcode", None)
    return isinstance(original, sqlite3.OperationalError) and code is not None and code & 0xFF == sqlite3.SQLITE_BUSY
