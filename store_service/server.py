"""Wiring: the database, every servicer, reflection and health on one grpc.aio server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import exc

from cw.store.v1 import (
    account_pb2,
    account_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    chat_session_pb2,
    chat_session_pb2_grpc,
    conversation_pb2,
    conversation_pb2_grpc,
    event_pb2,
    event_pb2_grpc,
    initiative_pb2,
    initiative_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    log_chunk_pb2,
    log_chunk_pb2_grpc,
    message_pb2,
    message_pb2_grpc,
    page_pb2,
    page_pb2_grpc,
    phase_pb2,
    phase_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    proposal_pb2,
    proposal_pb2_grpc,
    review_comment_pb2,
    review_comment_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)
from cw_edge.interceptor import BearerAuthInterceptor
from cw_edge.listen import SERVER_OPTIONS, Listening, ListenRefused, bind, check_free
from cw_edge.ownership import ProcessLock
from cw_edge.reflection import serve_reflection
from cw_edge.tokens import default_auth_dir
from store_service.api.account import AccountServicer
from store_service.api.agent import AgentServicer
from store_service.api.chat_session import ChatSessionServicer
from store_service.api.conversation import ConversationServicer
from store_service.api.errors import DomainErrorInterceptor, refusal_status
from store_service.api.event_feed import EventFeed
from store_service.api.events import EventServicer
from store_service.api.initiative import InitiativeServicer
from store_service.api.lease import LeaseServicer
from store_service.api.log_chunk import LogChunkServicer
from store_service.api.message import MessageServicer
from store_service.api.page import PageServicer
from store_service.api.phase import PhaseServicer
from store_service.api.project import ProjectServicer
from store_service.api.proposal import ProposalServicer
from store_service.api.review_comment import ReviewCommentServicer
from store_service.api.task import TaskServicer
from store_service.auth_files import SECRETS_KEY, AuthFiles, ensure_auth_files
from store_service.database import Database
from store_service.db import health as disk_health
from store_service.db.engine import DEFAULT_SYNCHRONOUS, Synchronous
from store_service.db.file_modes import make_database_files_private
from store_service.db.location import DatabaseLocation, PostgresDatabase, SqliteFile, located
from store_service.db.secret_box import SecretBox, key_opens_stored_secrets, seal_stored_secrets
from store_service.rules.permissions import ORCHESTRATOR_ONLY_METHODS
from store_service.startup import StartupRefused

log = logging.getLogger("cw.store")
SHUTDOWN_GRACE_SECONDS = 5.0

# (servicer class, registration function, the service's descriptor in its generated module)
_SERVICES: list[tuple[Any, Any, Any]] = [
    (InitiativeServicer, initiative_pb2_grpc.add_InitiativeServiceServicer_to_server, initiative_pb2),
    (PhaseServicer, phase_pb2_grpc.add_PhaseServiceServicer_to_server, phase_pb2),
    (TaskServicer, task_pb2_grpc.add_TaskServiceServicer_to_server, task_pb2),
    (AgentServicer, agent_pb2_grpc.add_AgentServiceServicer_to_server, agent_pb2),
    (MessageServicer, message_pb2_grpc.add_MessageServiceServicer_to_server, message_pb2),
    (PageServicer, page_pb2_grpc.add_PageServiceServicer_to_server, page_pb2),
    (ProjectServicer, project_pb2_grpc.add_ProjectServiceServicer_to_server, project_pb2),
    (AccountServicer, account_pb2_grpc.add_AccountServiceServicer_to_server, account_pb2),
    (ProposalServicer, proposal_pb2_grpc.add_ProposalServiceServicer_to_server, proposal_pb2),
    (LogChunkServicer, log_chunk_pb2_grpc.add_LogChunkServiceServicer_to_server, log_chunk_pb2),
    (ConversationServicer, conversation_pb2_grpc.add_ConversationServiceServicer_to_server, conversation_pb2),
    (ChatSessionServicer, chat_session_pb2_grpc.add_ChatSessionServiceServicer_to_server, chat_session_pb2),
    (
        ReviewCommentServicer,
        review_comment_pb2_grpc.add_ReviewCommentServiceServicer_to_server,
        review_comment_pb2,
    ),
    # Scale-out: orchestrators' leases.
    (LeaseServicer, lease_pb2_grpc.add_LeaseServiceServicer_to_server, lease_pb2),
]


def service_names() -> list[str]:
    modules = [module for _, _, module in _SERVICES] + [event_pb2]
    return [service.full_name for module in modules for service in module.DESCRIPTOR.services_by_name.values()]


@dataclass
class StoreServer:
    server: grpc.aio.Server
    port: int
    db: Database
    health: health.aio.HealthServicer
    feed: EventFeed
    auth: AuthFiles
    # A SQLite file's owner lock; None on PostgreSQL, where replicas share the database.
    lock: ProcessLock | None

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Health goes NOT_SERVING first, so balancers stop sending; open event streams end; then
        in-flight calls get the grace period to finish."""
        await self.health.enter_graceful_shutdown()
        self.feed.close()
        await self.server.stop(grace)
        self.db.close()
        if self.lock is not None:
            self.lock.release()


async def start(
    where: Path | DatabaseLocation,
    listen: str | Listening = "127.0.0.1:50051",
    synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
    auth_dir: Path | None = None,
) -> StoreServer:
    """`where`: a SQLite file (a bare path) or a PostgreSQL database. `auth_dir` defaults to `auth/`
    beside a SQLite file (`$CW_HOME/auth` for the default --db), and to `$CW_HOME/auth` with
    PostgreSQL: replicas share their token files and secrets key by sharing this directory."""
    location = located(where)
    listening = listen if isinstance(listen, Listening) else Listening(listen)
    lock = _own(location)
    try:
        return await _serve(location, listening, synchronous, auth_dir, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _own(location: DatabaseLocation) -> ProcessLock | None:
    """One store per SQLite file (a lock beside it); any number of replicas on one PostgreSQL."""
    if isinstance(location, PostgresDatabase):
        return None
    path = location.path
    path.parent.mkdir(parents=True, exist_ok=True)
    return ProcessLock.acquire(path.with_name(f"{path.name}.lock"), f"database {path}", "store")


def _default_auth_dir(location: DatabaseLocation) -> Path:
    return location.path.parent / "auth" if isinstance(location, SqliteFile) else default_auth_dir()


def _open_database(location: DatabaseLocation, synchronous: Synchronous, secrets: SecretBox) -> Database:
    """The database, checked (a damaged SQLite file is refused: db/health.py) and migrated to head;
    one line, never a password, when it cannot be reached."""
    if isinstance(location, SqliteFile):
        make_database_files_private(location.path)
        damage = disk_health.quick_check(location.path)
        if damage:
            raise StartupRefused(f"database {location.describe()}: {disk_health.damaged_message(damage)}")
    db = Database(location, synchronous, secrets)
    try:
        db.migrate()
    except exc.OperationalError as error:
        db.close()
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise StartupRefused(f"cannot open the database {location.describe()}: {reason}") from None
    return db


async def _settle_secrets(db: Database, secrets: SecretBox, auth_dir: Path) -> None:
    """Refuses a key that did not seal the stored secrets (replicas must share the auth
    directory's files); seals what was stored before encryption at rest."""
    if not await db.read(lambda uow: key_opens_stored_secrets(uow.session, secrets)):
        raise StartupRefused(
            f"{auth_dir / SECRETS_KEY} is not the key the database's account secrets were sealed with: "
            "every store on one database needs the same auth directory's files"
        )
    if sealed := await db.write(lambda uow: seal_stored_secrets(uow.session, secrets)):
        log.info("encrypted the secrets of %d account(s) stored before encryption at rest", sealed)


async def _serve(
    location: DatabaseLocation,
    listening: Listening,
    synchronous: Synchronous,
    auth_dir: Path | None,
    lock: ProcessLock | None,
) -> StoreServer:
    check_free(listening)
    auth = ensure_auth_files(auth_dir or _default_auth_dir(location))
    secrets = SecretBox(auth.secrets_key)
    db = _open_database(location, synchronous, secrets)
    try:
        await _settle_secrets(db, secrets, auth.directory)
    except BaseException:
        db.close()
        raise
    feed = EventFeed(db)
    await feed.start()
    db.on_commit = feed.committed

    authentication = BearerAuthInterceptor(auth.tokens, refusal_status, ORCHESTRATOR_ONLY_METHODS)
    server = grpc.aio.server(interceptors=[authentication, DomainErrorInterceptor()], options=SERVER_OPTIONS)
    for servicer, register, _module in _SERVICES:
        register(servicer(db), server)
    event_pb2_grpc.add_EventServiceServicer_to_server(EventServicer(db, feed), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = service_names()
    serve_reflection(server, [*names, health.SERVICE_NAME])

    try:
        port = bind(server, listening, log)
    except ListenRefused:
        feed.close()
        db.close()
        raise
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if lock is not None:
        lock.announce(f"{listening.host}:{port}")
    scheme = "TLS" if listening.tls else "plaintext"
    log.info("cw store listening on %s:%d (%s), database %s", listening.host, port, scheme, location.describe())
    return StoreServer(server, port, db, health_servicer, feed, auth, lock)
