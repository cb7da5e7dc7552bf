"""The unit of work: one transaction, the repositories that act inside it, and its events."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from store_service.db import change_events, update_times
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

    def __init__(self, session_factory: sessionmaker[Session], on_commit: Callable[[], None]) -> None:
        self._session_factory = session_factory
        self._on_commit = on_commit

    def __enter__(self) -> Self:
        self.session = self._session_factory()
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
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        """Keeps the transaction, once the progress invariants hold in the state it leaves."""
        progress.check(self.session)
        self.session.commit()
        self._on_commit()


def _nothing() -> None:
    return None


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

    def write(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._writer, self._committed)

    def _committed(self) -> None:
        self.on_commit()

    def read(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._reader, _nothing)
