"""The unit of work: one transaction, the repositories that act inside it, and its events.

A write's transaction is the writer connection's own (SQLAlchemy Core), begun as the unit of work
starts; its Session joins that transaction and is bound to that connection, so the ORM's flushes
and the statements run on the driver's cursor (repositories/sqlalchemy/inserts.py, db/event_log.py,
db/lookups.py: `connection_of`) are one transaction. A write that needs nothing of the ORM (a plain
Create: its checks read a few columns, its row and event are INSERTed on the cursor) never begins
the Session's own transaction machinery, which cost more than the write's INSERTs
(bench/store_floor.py, CreateTask): its commit is the connection's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.orm import Session, sessionmaker

from store_service.db import change_events, update_times
from store_service.db.transaction import CONNECTION_KEY
from store_service.repositories.account import AccountRepository
from store_service.repositories.agent import AgentRepository
from store_service.repositories.chat_session import ChatSessionRepository
from store_service.repositories.conversation import ConversationRepository
from store_service.repositories.event import EventRepository
from store_service.repositories.initiative import InitiativeRepository
from store_service.repositories.lease import LeaseRepository
from store_service.repositories.log_chunk import LogChunkRepository
from store_service.repositories.message import MessageRepository
from store_service.repositories.page import PageRepository
from store_service.repositories.phase import PhaseRepository
from store_service.repositories.project import ProjectRepository
from store_service.repositories.proposal import ProposalRepository
from store_service.repositories.review_comment import ReviewCommentRepository
from store_service.repositories.sqlalchemy.account import SqlAlchemyAccountRepository
from store_service.repositories.sqlalchemy.agent import SqlAlchemyAgentRepository
from store_service.repositories.sqlalchemy.chat_session import SqlAlchemyChatSessionRepository
from store_service.repositories.sqlalchemy.conversation import SqlAlchemyConversationRepository
from store_service.repositories.sqlalchemy.event import SqlAlchemyEventRepository
from store_service.repositories.sqlalchemy.initiative import SqlAlchemyInitiativeRepository
from store_service.repositories.sqlalchemy.lease import SqlAlchemyLeaseRepository
from store_service.repositories.sqlalchemy.log_chunk import SqlAlchemyLogChunkRepository
from store_service.repositories.sqlalchemy.message import SqlAlchemyMessageRepository
from store_service.repositories.sqlalchemy.page import SqlAlchemyPageRepository
from store_service.repositories.sqlalchemy.phase import SqlAlchemyPhaseRepository
from store_service.repositories.sqlalchemy.project import SqlAlchemyProjectRepository
from store_service.repositories.sqlalchemy.proposal import SqlAlchemyProposalRepository
from store_service.repositories.sqlalchemy.review_comment import SqlAlchemyReviewCommentRepository
from store_service.repositories.sqlalchemy.task import SqlAlchemyTaskRepository
from store_service.repositories.task import TaskRepository
from store_service.rules import progress


class SqlAlchemyUnitOfWork:
    """Use as a context manager; nothing is kept unless `commit()` is called inside it. Each
    repository is made the first time the work uses it: most writes use one or two of them."""

    session: Session

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        on_commit: Callable[[], None],
        writer: WriterConnection | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._on_commit = on_commit
        self._writer = writer
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> Self:
        if self._writer is None:
            self.session = self._session_factory()
            return self
        connection = self._writer.take()
        try:
            self._transaction = connection.begin()
        except BaseException:
            self._writer.give_back()
            raise
        # The session joins the connection's transaction: its commit flushes and leaves the
        # transaction to `commit` below; its rollback (a failed flush) rolls the transaction back.
        self.session = self._session_factory(bind=connection, join_transaction_mode="rollback_only")
        self.session.info[CONNECTION_KEY] = connection
        return self

    @cached_property
    def initiatives(self) -> InitiativeRepository:
        return SqlAlchemyInitiativeRepository(self.session)

    @cached_property
    def phases(self) -> PhaseRepository:
        return SqlAlchemyPhaseRepository(self.session)

    @cached_property
    def tasks(self) -> TaskRepository:
        return SqlAlchemyTaskRepository(self.session)

    @cached_property
    def agents(self) -> AgentRepository:
        return SqlAlchemyAgentRepository(self.session)

    @cached_property
    def messages(self) -> MessageRepository:
        return SqlAlchemyMessageRepository(self.session)

    @cached_property
    def pages(self) -> PageRepository:
        return SqlAlchemyPageRepository(self.session)

    @cached_property
    def projects(self) -> ProjectRepository:
        return SqlAlchemyProjectRepository(self.session)

    @cached_property
    def accounts(self) -> AccountRepository:
        return SqlAlchemyAccountRepository(self.session)

    @cached_property
    def proposals(self) -> ProposalRepository:
        return SqlAlchemyProposalRepository(self.session)

    @cached_property
    def log_chunks(self) -> LogChunkRepository:
        return SqlAlchemyLogChunkRepository(self.session)

    @cached_property
    def conversations(self) -> ConversationRepository:
        return SqlAlchemyConversationRepository(self.session)

    @cached_property
    def chat_sessions(self) -> ChatSessionRepository:
        return SqlAlchemyChatSessionRepository(self.session)

    @cached_property
    def review_comments(self) -> ReviewCommentRepository:
        return SqlAlchemyReviewCommentRepository(self.session)

    @cached_property
    def events(self) -> EventRepository:
        return SqlAlchemyEventRepository(self.session)

    @cached_property
    def leases(self) -> LeaseRepository:
        return SqlAlchemyLeaseRepository(self.session)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        progress.forget(self.session)
        if self._writer is None:
            self.session.rollback()
            self.session.close()
            return
        connection = self.session.info[CONNECTION_KEY]
        try:
            self.session.close()
            if connection.get_transaction() is not None:  # not committed, or failed (inactive)
                connection.rollback()
        except BaseException:
            # As the pool does with a connection that fails its reset: the next write connects anew.
            self._writer.discard()
            raise
        finally:
            self._writer.give_back()

    def commit(self) -> None:
        """Keeps the transaction, once the progress invariants hold in the state it leaves."""
        progress.check(self.session)
        self.session.commit()
        if self._transaction is not None:
            self._transaction.commit()
        self._on_commit()


def _nothing() -> None:
    return None


class WriterConnection:
    """The writer engine's connection, held from one write to the next on SQLite: its pool has that
    one connection, and checking it out and back in for every write cost a good part of a small
    write. One unit of work holds it at a time (`take` waits, as the pool of one did). On
    PostgreSQL each write checks a connection out of the pool, which tries it first (postgres.py):
    after a server restart a write connects again instead of failing."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._held = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._connection: Connection | None = None

    def take(self) -> Connection:
        self._lock.acquire()
        try:
            if self._connection is None or self._connection.closed:
                self._connection = self._engine.connect()
            return self._connection
        except BaseException:
            self._lock.release()
            raise

    def give_back(self) -> None:
        try:
            if not self._held and self._connection is not None:
                self._connection.close()
                self._connection = None
        finally:
            self._lock.release()

    def discard(self) -> None:
        """Drops the connection (its holder's transaction could not be ended)."""
        if self._connection is not None:
            self._connection.invalidate()
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class UnitOfWorkFactory:
    """Hands out units of work: `write()` on the single writer connection, `read()` from the pool."""

    def __init__(
        self,
        writer: sessionmaker[Session],
        reader: sessionmaker[Session],
        on_commit: Callable[[], None] = _nothing,
    ) -> None:
        change_events.install(Session)
        update_times.install(Session)
        progress.install(Session)
        self._writer, self._reader = writer, reader
        self.on_commit = on_commit
        bind = writer.kw.get("bind")
        self._writer_connection = WriterConnection(bind) if isinstance(bind, Engine) else None

    def write(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._writer, self._committed, self._writer_connection)

    def close(self) -> None:
        """Gives the held writer connection back (before its engine is disposed)."""
        if self._writer_connection is not None:
            self._writer_connection.close()

    def _committed(self) -> None:
        self.on_commit()

    def read(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._reader, _nothing)
