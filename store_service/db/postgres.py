"""PostgreSQL engines: what makes several store replicas on one database behave as SQLite's single
writer does, and how each replica learns of the others' commits.

- Writes: every write transaction starts by taking the store's write lock, a transaction-scoped
  advisory lock, so write transactions run one at a time across every replica: PostgreSQL's
  counterpart of SQLite's `BEGIN IMMEDIATE`. Everything the store's writes rely on holds as on
  SQLite: a precondition, an idempotency look-up (`request_id`), a cycle or uniqueness check reads
  exactly the rows the write then changes; and commits happen in event-sequence order, so a
  follower reading `sequence > cursor` never passes an event that commits later (the lock is
  released only after the commit is visible to every new snapshot). The writer stays READ
  COMMITTED: each statement after the lock sees every transaction that held it before, where
  REPEATABLE READ would keep the snapshot the lock statement itself took while it waited.
- Notifications: the same first statement queues `NOTIFY cw_events`, which PostgreSQL delivers to
  every listening replica when, and only if, the transaction commits (`commit_notifications`).
- Reads: REPEATABLE READ, one snapshot for the whole of a read, as a SQLite reader has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from store_service.db.location import PostgresDatabase

log = logging.getLogger("cw.store.db")

# pg_advisory_xact_lock's key for the store's writes: any number, the same for every replica (an
# advisory lock belongs to one database, so two cw databases on one server do not share it).
WRITE_LOCK_KEY = 0x6377_0001
CHANNEL = "cw_events"
# How each write transaction begins: one round trip (no parameters, so one simple query).
BEGIN_WRITE = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY}); NOTIFY {CHANNEL}"
APPLICATION_NAME = "cw-store"
# After a lost listening connection, the next attempt waits this long.
RELISTEN_SECONDS = 0.5


def _engine(database: PostgresDatabase, pool_size: int, **options: Any) -> Engine:
    """Each connection is tried as it leaves the pool (one round trip): after a server restart, or
    a connection an administrator ended, a call connects again instead of failing."""
    return create_engine(
        database.url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"application_name": APPLICATION_NAME},
        **options,
    )


def create_writer_engine(database: PostgresDatabase) -> Engine:
    """One connection: a replica has a single writer thread, as on SQLite."""
    engine = _engine(database, 1)

    @event.listens_for(engine, "begin")
    def _take_write_lock(connection: Any) -> None:
        connection.connection.driver_connection.execute(BEGIN_WRITE)

    return engine


def create_reader_engine(database: PostgresDatabase, pool_size: int) -> Engine:
    return _engine(database, pool_size, isolation_level="REPEATABLE READ")


async def commit_notifications(database: PostgresDatabase) -> AsyncIterator[None]:
    """Yields after each batch of commits to the database, by any replica; also each time it
    (re)connects, since commits made while it did not listen went unannounced."""
    while True:
        try:
            connection = await psycopg.AsyncConnection.connect(
                database.libpq_conninfo(), autocommit=True, application_name=APPLICATION_NAME
            )
            async with connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                yield
                async for _ in connection.notifies():
                    yield
        except psycopg.Error as error:
            # The message names the server but never the password.
            log.warning("listening for commits failed (%s); listening again", type(error).__name__)
        await asyncio.sleep(RELISTEN_SECONDS)
