"""Wiring: connect to the store, subscribe, reconcile everything, then serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from orchestrator_service.agents.providers import Provider, provider_table
from orchestrator_service.api.servicer import OrchestratorServicer
from orchestrator_service.operations import Operations
from orchestrator_service.reconciler import Reconciler
from orchestrator_service.store_client import StoreClient

log = logging.getLogger("cw.orchestrator")
SHUTDOWN_GRACE_SECONDS = 5.0
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name


@dataclass
class OrchestratorServer:
    server: grpc.aio.Server
    port: int
    reconciler: Reconciler
    store: StoreClient
    health: health.aio.HealthServicer

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Agents keep running: they outlive the orchestrator by design."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.reconciler.stop()
        await self.store.close()


@dataclass(frozen=True)
class Config:
    store: str = "127.0.0.1:50051"
    listen: str = "127.0.0.1:50052"
    workspace: Path = Path(".cw/workspace")
    providers: dict[str, Provider] = field(default_factory=provider_table)
    default_provider: str = "claude"
    max_agents: int = 4


async def start(config: Config) -> OrchestratorServer:
    config.workspace.mkdir(parents=True, exist_ok=True)
    store = StoreClient(config.store)
    reconciler = Reconciler(
        store, config.workspace.resolve(), config.providers, config.default_provider, config.max_agents
    )
    await reconciler.start()
    listen = config.listen

    server = grpc.aio.server()
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(
        OrchestratorServicer(Operations(reconciler)), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = listen.rsplit(":", 1)[0]
    log.info("cw orchestrator listening on %s:%d, store %s, workspace %s", host, port, config.store, config.workspace)
    return OrchestratorServer(server, port, reconciler, store, health_servicer)
