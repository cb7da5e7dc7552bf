"""Wiring: hold the workspace, connect to the store, load the live work, then serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from orchestrator_service import ownership
from orchestrator_service.agents.providers import Provider, provider_table
from orchestrator_service.api.operations import Operations
from orchestrator_service.api.review import Review
from orchestrator_service.api.servicer import OrchestratorServicer
from orchestrator_service.controllers.context import Settings
from orchestrator_service.core import Orchestrator
from orchestrator_service.outcomes import DEFAULT_RETRY_DELAYS
from orchestrator_service.store_client import StoreClient

log = logging.getLogger("cw.orchestrator")
SHUTDOWN_GRACE_SECONDS = 5.0
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
# gRPC servers in Python share a bound port by default (SO_REUSEPORT): a second server on a port
# already in use must fail instead.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


@dataclass
class OrchestratorServer:
    server: grpc.aio.Server
    port: int
    orchestrator: Orchestrator
    store: StoreClient
    health: health.aio.HealthServicer
    lock: IO[str]

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Agents keep running: they outlive the orchestrator by design."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.orchestrator.stop()
        await self.store.close()
        self.lock.close()


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


class CannotStart(Exception):
    """The orchestrator cannot start; the message is the one line to show."""


async def start(config: Config) -> OrchestratorServer:
    root = config.workspace.resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        lock = ownership.hold(root / ".lock", f"workspace {config.workspace}", config.listen)
    except ownership.Held as held:
        raise CannotStart(str(held)) from None
    store = StoreClient(config.store)
    settings = Settings(
        config.providers, config.default_provider, config.max_agents, config.retry_delays, config.agents_in_sandbox
    )
    orchestrator = Orchestrator(store, root, settings)

    server = grpc.aio.server(options=SERVER_OPTIONS)
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(
        OrchestratorServicer(Operations(orchestrator), Review(orchestrator), root), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        port = server.add_insecure_port(config.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        lock.close()
        await store.close()
        raise CannotStart(f"cannot listen on {config.listen}: address already in use")
    await orchestrator.start()
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = config.listen.rsplit(":", 1)[0]
    ownership.record(lock, f"{host}:{port}")
    log.info("cw orchestrator listening on %s:%d, store %s, workspace %s", host, port, config.store, config.workspace)
    return OrchestratorServer(server, port, orchestrator, store, health_servicer, lock)
