"""Runs the store's synchronous SQLAlchemy work off the event loop.

One writer thread (SQLite has one writer anyway, and a single thread makes commit order plain) and a
small pool of reader threads, so that many open streams never hold a thread each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from store_service.db import migrate, secret_box
from store_service.db.engine import (
    DEFAULT_SYNCHRONOUS,
    Synchronous,
    create_reader_engine,
    create_writer_engine,
)
from store_service.db.secret_box import SecretBox
from store_service.db.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
READER_THREADS = 4


class Database:
    def __init__(
        self, path: Path, synchronous: Synchronous = DEFAULT_SYNCHRONOUS, secrets: SecretBox | None = None
    ) -> None:
        self.path = path
        # Without a box (repository tests), account secrets are stored as they come.
        self.secrets = secrets
        secret_box.install(Session)
        self._writer_engine = create_writer_engine(path, synchronous)
        self._reader_engine = create_reader_engine(path, READER_THREADS, synchronous)
        self.units = UnitOfWorkFactory(
            sessionmaker(self._writer_engine, expire_on_commit=False, info={secret_box.SESSION_INFO_KEY: secrets}),
            sessionmaker(self._reader_engine, expire_on_commit=False),
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="store-reader")

    def migrate(self) -> None:
        migrate.upgrade(self._writer_engine)

    async def write(self, work: Callable[[SqlAlchemyUnitOfWork], T]) -> T:
        """Runs `work` in one write transaction and commits it, unless it raises."""

        def run() -> T:
            with self.units.write() as uow:
                result = work(uow)
                uow.commit()
                return result

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def read(self, work: Callable[[SqlAlchemyUnitOfWork], T]) -> T:
        def run() -> T:
            with self.units.read() as uow:
                return work(uow)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._writer_engine.dispose()
        self._reader_engine.dispose()
