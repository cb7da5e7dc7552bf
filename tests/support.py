"""Shared test helpers: a store server on a background event loop, stubs, status details."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection_pb2

from clients.local import Service, start
from clients.sdk.credentials import BearerToken
from clients.sdk.errors import from_rpc_error
from cw.store.v1 import (
    account_pb2_grpc,
    agent_pb2_grpc,
    chat_session_pb2_grpc,
    conversation_pb2_grpc,
    event_pb2_grpc,
    initiative_pb2_grpc,
    lease_pb2_grpc,
    log_chunk_pb2_grpc,
    message_pb2_grpc,
    page_pb2_grpc,
    phase_pb2_grpc,
    project_pb2_grpc,
    proposal_pb2_grpc,
    review_comment_pb2_grpc,
    task_pb2_grpc,
)
from cw_edge.tokens import TOKEN_FILES, Identity, read_token
from store_service import server
from store_service.db.location import DatabaseLocation, PostgresDatabase, SqliteFile, located


@dataclass
class RunningStore:
    address: str
    # Holds the token files (`auth/`) and, on SQLite, the database file.
    home: Path
    location: DatabaseLocation
    loop: asyncio.AbstractEventLoop
    handle: server.StoreServer

    @property
    def db_path(self) -> Path:
        """The SQLite file, for the tests that look into it (SQLite's own)."""
        assert isinstance(self.location, SqliteFile), "a store on PostgreSQL has no database file"
        return self.location.path

    def channel(self, identity: Identity = Identity.ORCHESTRATOR) -> grpc.Channel:
        """A channel whose calls carry `identity`'s token (the orchestrator's may do everything)."""
        return authorized_channel(self.address, self.handle.auth.tokens[identity])


@contextmanager
def store_in_thread(where: Path | DatabaseLocation, home: Path | None = None) -> Iterator[RunningStore]:
    """A real store server on port 0, its event loop on a background thread; its token files in
    `home/auth` (`home`: by default the SQLite file's directory). Replicas on one PostgreSQL
    database share a `home`, so they know the same tokens."""
    location = located(where)
    if home is None:
        assert isinstance(location, SqliteFile), "a store on PostgreSQL needs a home for its token files"
        home = location.path.parent
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = server.start(location, "127.0.0.1:0", auth_dir=home / "auth")
    handle = asyncio.run_coroutine_threadsafe(started, loop).result(30)
    try:
        yield RunningStore(f"127.0.0.1:{handle.port}", home, location, loop, handle)
    finally:
        asyncio.run_coroutine_threadsafe(handle.stop(0.5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def authorized_channel(
    address: str, token: str, root_certificates: bytes | None = None, options: list[tuple[str, Any]] | None = None
) -> grpc.Channel:
    """A channel whose calls carry `token`, over TLS when given the CA; `options` are gRPC's
    channel arguments."""
    if root_certificates is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates), options=options)
    return grpc.intercept_channel(channel, BearerToken(token))


def list_services_v1(channel: grpc.Channel) -> list[str]:
    """What a `grpc.reflection.v1` client (current grpcurl, grpc-js) sees; v1 and v1alpha share
    their messages' wire format, so v1alpha's classes encode the v1 call."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    replies = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return [service.name for reply in replies for service in reply.list_services_response.service]


def tokens_in(auth_dir: Path) -> dict[Identity, str]:
    return {identity: read_token(auth_dir / name) for identity, name in TOKEN_FILES.items()}


def stubs(channel: grpc.Channel) -> SimpleNamespace:
    return SimpleNamespace(
        initiatives=initiative_pb2_grpc.InitiativeServiceStub(channel),
        phases=phase_pb2_grpc.PhaseServiceStub(channel),
        tasks=task_pb2_grpc.TaskServiceStub(channel),
        agents=agent_pb2_grpc.AgentServiceStub(channel),
        messages=message_pb2_grpc.MessageServiceStub(channel),
        pages=page_pb2_grpc.PageServiceStub(channel),
        projects=project_pb2_grpc.ProjectServiceStub(channel),
        accounts=account_pb2_grpc.AccountServiceStub(channel),
        proposals=proposal_pb2_grpc.ProposalServiceStub(channel),
        log_chunks=log_chunk_pb2_grpc.LogChunkServiceStub(channel),
        conversations=conversation_pb2_grpc.ConversationServiceStub(channel),
        chat_sessions=chat_session_pb2_grpc.ChatSessionServiceStub(channel),
        review_comments=review_comment_pb2_grpc.ReviewCommentServiceStub(channel),
        events=event_pb2_grpc.EventServiceStub(channel),
        leases=lease_pb2_grpc.LeaseServiceStub(channel),
    )


@dataclass
class ErrorDetails:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]
    violations: list[str]


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """The code, ErrorInfo and BadRequest fields of a failed call, as the SDK reads them."""
    failure = from_rpc_error(error)
    assert failure.reason, f"no rich status on {error}"
    violations = [field for field, _ in failure.violations]
    return ErrorDetails(failure.code, failure.message, failure.reason, failure.metadata, violations)


def call_error(call: Any, request: Any) -> ErrorDetails:
    """Makes a call that must fail and returns what the failure says."""
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        return error_details(error)
    raise AssertionError(f"{call} succeeded but should have failed")


def start_store_process(
    db: Path | DatabaseLocation,
    log_path: Path,
    listen: str = "127.0.0.1:0",
    log_level: str = "INFO",
    extra: list[str] | None = None,
    *,
    auth_dir: Path | None = None,
) -> Service:
    """`python -m store_service` as its own process; returns once it says where it listens. Its
    token files: in `auth_dir`, by default `auth/` beside a SQLite file; a store on PostgreSQL
    needs one (replicas given the same `auth_dir` share their tokens and secrets key)."""
    location = located(db)
    if auth_dir is None:
        assert isinstance(location, SqliteFile), "a store on PostgreSQL needs an auth_dir"
        auth_dir = auth_dir_of(location.path)
    arguments = ["--db", db_argument(location), "--listen", listen, "--log-level", log_level]
    arguments += ["--auth-dir", str(auth_dir)]
    return start("store_service", [*arguments, *(extra or [])], log_path)


def start_store_replicas(database: PostgresDatabase, count: int, directory: Path) -> list[Service]:
    """`count` store processes on one PostgreSQL database, sharing the auth directory
    `directory/auth` (the tokens `tokens_in(directory / "auth")` are good at every one of them);
    replica i logs to `directory/store-i.log`."""
    auth_dir = directory / "auth"
    return [start_store_process(database, directory / f"store-{i}.log", auth_dir=auth_dir) for i in range(count)]


def db_argument(location: DatabaseLocation) -> str:
    """What `--db` takes for `location` (a PostgreSQL URL with its password: tests only)."""
    return str(location.path) if isinstance(location, SqliteFile) else location.libpq_conninfo()


def auth_dir_of(db_path: Path) -> Path:
    return db_path.parent / "auth"


def process_channel(store: Service, db_path: Path, identity: Identity = Identity.CLIENT) -> grpc.Channel:
    """A channel to a store process started by `start_store_process`, as `identity`."""
    return authorized_channel(store.address, tokens_in(auth_dir_of(db_path))[identity])


# A one-file diff as `git diff` prints it: a context line, a removed one, an added one.
SMALL_DIFF = """diff --git a/a.txt b/a.txt
--- a/a.txt
+++ b/a.txt
@@ -1,2 +1,2 @@
 keep
-old
+new
"""
