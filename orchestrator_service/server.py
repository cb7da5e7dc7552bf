"""Wiring: hold the workspace, bind the port, connect to the store, load the live work, then serve.

Refusals come first and cost nothing: a workspace another live orchestrator holds, an address in
use or not allowed without TLS. Then the store (waiting for it and for its token files as long as
it takes), then the controllers, then callers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from cw_edge.interceptor import BearerAuthInterceptor
from cw_edge.listen import SERVER_OPTIONS, Listening, ListenRefused, bind, check_free
from cw_edge.ownership import Held, ProcessLock
from cw_edge.parsing import ParsedRequests
from cw_edge.reflection import serve_reflection
from cw_edge.tokens import TOKEN_FILES, Identity, read_token
from orchestrator_service.agents.providers import Provider, provider_table
from orchestrator_service.agents.sandbox import SandboxPolicy
from orchestrator_service.agents.usage import Price
from orchestrator_service.api.operations import Operations
from orchestrator_service.api.review import Review
from orchestrator_service.api.servicer import OrchestratorServicer, error_status
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.membership import NameTaken, owner_id
from orchestrator_service.controllers.agent_runs.output import DEFAULT_MAX_OUTPUT_BYTES
from orchestrator_service.controllers.context import Settings
from orchestrator_service.core import Orchestrator
from orchestrator_service.errors import OrchestratorError
from orchestrator_service.git import checkpoints
from orchestrator_service.outcomes import DEFAULT_RETRY_DELAYS
from orchestrator_service.store_client import StoreClient

log = logging.getLogger("cw.orchestrator")
SHUTDOWN_GRACE_SECONDS = 5.0
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
TOKEN_POLL_SECONDS = 0.2


class CannotStart(Exception):
    """The orchestrator cannot start; the message is the one line to show."""


@dataclass
class OrchestratorServer:
    server: grpc.aio.Server
    port: int
    orchestrator: Orchestrator
    store: StoreClient
    health: health.aio.HealthServicer
    lock: ProcessLock

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Agents keep running: they outlive the orchestrator by design."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.orchestrator.stop()
        await self.store.close()
        self.lock.release()


@dataclass(frozen=True)
class Config:
    store: str = "127.0.0.1:50051"
    listen: str = "127.0.0.1:50052"
    workspace: Path = Path(".cw/workspace")
    providers: dict[str, Provider] = field(default_factory=provider_table)
    default_provider: str = "claude"
    max_agents: int = 4
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    agents_in_sandbox: bool = False
    # cw's own sandbox for every run (agents/sandbox.py): on unless --agents-in-sandbox.
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    auth_dir: Path = Path(".cw/auth")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False
    # The CA that signed the store's certificate: the store is reached over TLS when given.
    store_tls_ca: Path | None = None
    # Several orchestrators on one store: empty name: HOST:WORKSPACE.
    name: str = ""
    lease_ttl: float = 15.0
    shared_remotes: str = ""
    # What the store keeps of one run's output (controllers/agent_runs/output.py).
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    checkpoint_max_file_bytes: int = checkpoints.DEFAULT_MAX_FILE_BYTES
    max_worktree_bytes: int = checkpoints.DEFAULT_MAX_WORKTREE_BYTES
    agent_email_domain: str = checkpoints.DEFAULT_EMAIL_DOMAIN
    # USD per million tokens per model, for CLIs that report no cost (`--prices`, agents/usage.py).
    prices: dict[str, Price] = field(default_factory=dict)

    def settings(self, root: Path) -> Settings:
        """With this orchestrator's name and its workspace's owner id (made in it on first use)."""
        return Settings(
            self.providers,
            self.default_provider,
            self.max_agents,
            self.retry_delays,
            self.agents_in_sandbox,
            sandbox=self.sandbox,
            name=self.name or policy.default_name(socket.gethostname(), root),
            owner=owner_id(root),
            lease_ttl=self.lease_ttl,
            shared_remotes=self.shared_remotes,
            max_output_bytes=self.max_output_bytes,
            checkpoint_max_file_bytes=self.checkpoint_max_file_bytes,
            max_worktree_bytes=self.max_worktree_bytes,
            agent_email_domain=self.agent_email_domain,
            prices=self.prices,
        )


async def read_tokens(auth_dir: Path) -> dict[Identity, str]:
    """The token files, once the store has created them (it does on its first start)."""
    waiting = False
    while True:
        try:
            return {identity: read_token(auth_dir / name) for identity, name in TOKEN_FILES.items()}
        except (FileNotFoundError, ValueError):
            if not waiting:
                log.info("waiting for the token files in %s (the store creates them on its first start)", auth_dir)
                waiting = True
            await asyncio.sleep(TOKEN_POLL_SECONDS)


def _refusal(code: grpc.StatusCode, message: str) -> grpc.Status:
    error = OrchestratorError(message, code.name)
    error.code = code
    return error_status(error)


async def start(config: Config) -> OrchestratorServer:
    root = config.workspace.resolve()
    listening = Listening(config.listen, config.tls_cert, config.tls_key, config.insecure)
    try:
        lock = ProcessLock.acquire(root / ".lock", f"workspace {config.workspace}", "orchestrator")
    except Held as held:
        raise CannotStart(str(held)) from None
    try:
        return await _serve(config, root, listening, lock)
    except BaseException:
        lock.release()
        raise


async def _serve(config: Config, root: Path, listening: Listening, lock: ProcessLock) -> OrchestratorServer:
    try:
        check_free(listening)
    except ListenRefused as refused:
        raise CannotStart(str(refused)) from None
    tokens = await read_tokens(config.auth_dir)
    store_ca = config.store_tls_ca.read_bytes() if config.store_tls_ca else None
    store = StoreClient(config.store, tokens[Identity.ORCHESTRATOR], store_ca)
    orchestrator = Orchestrator(store, root, config.settings(root))

    # Callers may be people (the client token) or another orchestrator tool (its own token).
    interceptors = [BearerAuthInterceptor(tokens, _refusal), ParsedRequests(_refusal)]
    server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(
        OrchestratorServicer(Operations(orchestrator), Review(orchestrator), root), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    serve_reflection(server, [SERVICE_NAME, health.SERVICE_NAME])
    try:
        port = bind(server, listening, log)
    except ListenRefused as refused:
        await store.close()
        raise CannotStart(str(refused)) from None
    try:
        await orchestrator.start()
    except NameTaken as taken:
        await store.close()
        raise CannotStart(str(taken)) from None
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    lock.announce(f"{listening.host}:{port}")
    scheme = "TLS" if listening.tls else "plaintext"
    log.info(
        "cw orchestrator %s listening on %s:%d (%s), store %s, workspace %s",
        orchestrator.ctx.settings.name,
        listening.host,
        port,
        scheme,
        config.store,
        config.workspace,
    )
    return OrchestratorServer(server, port, orchestrator, store, health_servicer, lock)
