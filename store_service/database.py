"""Where the store's database work runs, on SQLite or PostgreSQL (`location.py`).

- `write(work)`: a unit of work on the one writer thread (SQLite has one writer anyway, and a single
  thread makes commit order plain, which event order relies on; on PostgreSQL the store's write
  lock makes the writer threads of every replica take turns: `postgres.py`).
- `fetch(work)`: reads of whole rows (`reads.Reads`: cached statements, no ORM). On SQLite it runs
  on the caller's thread, the event loop, with no hand-off: in WAL mode a reader never waits for the
  writer, so a read costs its query and nothing else. Its connection never waits for a lock either
  (busy timeout 0); the rare read that would (SQLite recovering its WAL index, an outside process
  holding the file exclusively) is run again on a reader thread, which may wait. On PostgreSQL a
  read is a round trip to a server, which must not stall the event loop: it runs on a reader thread.
- `read(work)`: a read-only unit of work (the ORM, the repositories) on a small pool of reader
  threads, for reads that need more than rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from store_service.db import engine, health, migrate, postgres, secret_box
from store_service.db.engine import DEFAULT_SYNCHRONOUS, Synchronous, is_busy
from store_service.db.location import DatabaseLocation, PostgresDatabase, SqliteFile, located
from store_service.db.reads import Reads
from store_service.db.secret_box import SecretBox
from store_service.domain.errors import DatabaseDamaged, DiskFull
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
log = logging.getLogger("cw.store")
READER_THREADS = 4


def create_engines(
    location: DatabaseLocation, synchronous: Synchronous = DEFAULT_SYNCHRONOUS, readers: int = READER_THREADS
) -> tuple[Engine, Engine]:
    """The writer's engine and the readers' (`synchronous` is SQLite's setting: PostgreSQL's
    commits are durable by default)."""
    if isinstance(location, PostgresDatabase):
        return postgres.create_writer_engine(location), postgres.create_reader_engine(location, readers)
    return (
        engine.create_writer_engine(location.path, synchronous),
        engine.create_reader_engine(location.path, readers, synchronous),
    )


class Database:
    def __init__(
        self,
        location: Path | DatabaseLocation,
        synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
        secrets: SecretBox | None = None,
    ) -> None:
        self.location = located(location)
        # Without a box (repository tests), account secrets are stored as they come.
        self.secrets = secrets
        secret_box.install(Session)
        self._writer_engine, self._reader_engine = create_engines(self.location, synchronous)
        # SQLite only: used on the event loop's thread, by `fetch`.
        self._loop_engine: Engine | None = None
        if isinstance(self.location, SqliteFile):
            self._loop_engine = engine.create_reader_engine(self.location.path, 1, synchronous, busy_timeout_ms=0)
        self._loop_connection: Connection | None = None
        self.units = UnitOfWorkFactory(
            sessionmaker(self._writer_engine, expire_on_commit=False, info={secret_box.SESSION_INFO_KEY: secrets}),
            sessionmaker(self._reader_engine, expire_on_commit=False),
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="store-reader")
        # Called on the event loop after each commit of `write` (the event feed's wake-up).
        self.on_commit: Callable[[], None] | None = None
        # Why writes are refused (a damaged database found while running; one found at start stops
        # the start: server.py); None: they are not.
        self.damage: str | None = None

    def migrate(self) -> None:
        migrate.upgrade(self._writer_engine)

    async def write(self, work: Callable[[SqlAlchemyUnitOfWork], T]) -> T:
        """Runs `work` in one write transaction and commits it, unless it raises; refused while the
        database is damaged.

        The writer thread hands back its outcome and the news of its commit in one call on the
        event loop (`_deliver`): one wake-up of the loop per write, where a wake-up for the answer
        and another for `on_commit` cost the loop twice (bench/store_floor.py, CreateTask). The
        news is given even when the caller stopped waiting (a cancelled call): a commit is never
        left untold."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        committed = False

        def run() -> T:
            nonlocal committed
            if self.damage:
                raise DatabaseDamaged(self.damage)
            with self.units.write() as uow:
                result = work(uow)
                uow.commit()
                committed = True
                return result

        def on_writer() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (self._watched(run), None)
            except BaseException as error:  # handed to the caller, as run_in_executor would
                outcome = (None, error)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._deliver, answer, outcome, committed)

        self._writer.submit(on_writer)
        return await answer

    def _deliver(self, answer: asyncio.Future[Any], outcome: tuple[Any, BaseException | None], committed: bool) -> None:
        """On the event loop: the write's outcome to its caller first, then the commit's news."""
        if not answer.cancelled():
            result, error = outcome
            if error is None:
                answer.set_result(result)
            else:
                answer.set_exception(error)
        if committed and self.on_commit is not None:
            self.on_commit()

    async def read(self, work: Callable[[SqlAlchemyUnitOfWork], T]) -> T:
        def run() -> T:
            with self.units.read() as uow:
                return work(uow)

        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: self._watched(run))

    def _watched(self, run: Callable[[], T]) -> T:
        """`run`, its disk failures told as such (health.py): DiskFull, or DatabaseDamaged."""
        try:
            return run()
        except (DiskFull, DatabaseDamaged):
            raise
        except Exception as error:
            self._reraise(error)

    def _reraise(self, error: Exception) -> NoReturn:
        failure = health.failure_of(error)
        if failure == health.Failure.DISK_FULL:
            log.error("a write to %s failed: the disk is full (%s)", self.location.describe(), error)
            raise DiskFull(health.DISK_FULL_MESSAGE) from error
        if failure == health.Failure.DAMAGED:
            raise self._damaged(str(getattr(error, "orig", None) or error)) from error
        raise error

    def _damaged(self, found: str) -> DatabaseDamaged:
        """From now on, writes are refused, saying why and what to do."""
        if not self.damage:
            self.damage = health.damaged_message(found)
            log.error("database %s: %s", self.location.describe(), self.damage)
        return DatabaseDamaged(self.damage)

    async def fetch(self, work: Callable[[Reads], T]) -> T:
        """SQLite: runs `work` now, on this thread (call it from the event loop only), on a
        connection that never waits for a lock; on SQLITE_BUSY, again on a reader thread that may
        wait. PostgreSQL: on a reader thread."""
        if self._loop_engine is not None:
            if self._loop_connection is None:
                self._loop_connection = self._loop_engine.connect()
            try:
                return _reading(self._loop_connection, work)
            except Exception as error:
                if not is_busy(error):
                    self._reraise(error)

        def run() -> T:
            with self._reader_engine.connect() as connection:
                return _reading(connection, work)

        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: self._watched(run))

    def commit_notifications(self) -> AsyncIterator[None] | None:
        """Wake-ups after commits by other processes (PostgreSQL: every replica's); None on SQLite,
        where this store is the database's only writer."""
        if isinstance(self.location, PostgresDatabase):
            return postgres.commit_notifications(self.location)
        return None

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.units.close()
        if self._loop_connection is not None:
            self._loop_connection.close()
        if self._loop_engine is not None:
            self._loop_engine.dispose()
        self._writer_engine.dispose()
        self._reader_engine.dispose()


def _reading(connection: Connection, work: Callable[[Reads], T]) -> T:
    """`work` on `connection`, ending the read transaction it may have begun, so no snapshot
    outlives the call (an open one would hide later commits and hold back checkpoints)."""
    try:
        return work(Reads(connection))
    finally:
        if connection.in_transaction():
            connection.rollback()
