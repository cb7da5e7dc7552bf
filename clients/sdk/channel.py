"""Channels with a default deadline on every unary call and gRPC-level retries of UNAVAILABLE.

Retries are configured through gRPC's service config, for the calls that are safe to repeat: reads,
and creates (the SDK gives every create a request_id, so a repeat makes nothing new). Those calls
also wait for the connection to be ready (within their deadline), so a server that restarts is
waited for rather than failed on. Streams get no default deadline: they are meant to stay open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.sdk.credentials import authenticated_channel
from clients.sdk.errors import UnavailableError

DEFAULT_STORE = "127.0.0.1:50051"
DEFAULT_ORCHESTRATOR = "127.0.0.1:50052"
DEFAULT_TIMEOUT = "30s"
# How long a client waits for a first connection before it says the service is unreachable.
CONNECT_TIMEOUT_SECONDS = 1.0
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.5s",
    "maxBackoff": "5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_SAFE_TO_REPEAT = ("Get", "List", "Count", "Create", "ApprovePhase")
ServiceMethods = Mapping[str, tuple[str, ...]]


def _unary_methods(services: ServiceMethods) -> Iterator[dict[str, str]]:
    for service, methods in services.items():
        for method in methods:
            yield {"service": service, "method": method}


def service_config(services: ServiceMethods) -> str:
    """`services`: each gRPC service's unary methods (clients/sdk/methods.py), by full name."""
    methods = list(_unary_methods(services))
    retried = [name for name in methods if name["method"].startswith(_SAFE_TO_REPEAT)]
    others = [name for name in methods if name not in retried]
    return json.dumps(
        {
            "methodConfig": [
                {"name": retried, "retryPolicy": RETRY_POLICY, "timeout": DEFAULT_TIMEOUT, "waitForReady": True},
                {"name": others, "timeout": DEFAULT_TIMEOUT},
            ]
        }
    )


def ensure_reachable(channel: grpc.Channel, what: str, address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Fails fast, saying where it tried, when nothing answers at the address: as soon as the
    connection is refused, and after `timeout` seconds when the address does not answer at all.

    A health check that does not wait for the connection does both: gRPC fails it at the first
    refused connection, and its deadline bounds the rest.
    """
    try:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=timeout, wait_for_ready=False
        )
    except grpc.RpcError as error:
        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return  # something answered: the call that follows will say what is wrong
        message = f"cannot reach the {what} at {address}: is cw running? `make run` starts the services"
        raise UnavailableError(grpc.StatusCode.UNAVAILABLE, message, "UNREACHABLE") from None


def _channel(address: str, services: ServiceMethods, token_file: Path | None, tls_ca: Path | None) -> grpc.Channel:
    options = [("grpc.enable_retries", 1), ("grpc.service_config", service_config(services))]
    return authenticated_channel(address, options, token_file, tls_ca)


class ServiceClient:
    """One channel to one of cw's services, carrying the client token: what StoreClient and
    OrchestratorClient share. Subclasses name the service and its unary methods (`methods`, from
    clients/sdk/methods.py); each of their stubs is made, and its generated module imported, the
    first time a call uses it."""

    service: ClassVar[str]
    address_variable: ClassVar[str]
    default_address: ClassVar[str]
    methods: ClassVar[ServiceMethods]

    def __init__(
        self,
        address: str | None = None,
        channel: grpc.Channel | None = None,
        token_file: Path | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        """`token_file`: else $CW_TOKEN_FILE, else $CW_HOME/auth/client.token. `tls_ca`: the PEM CA of
        the service's certificate (else $CW_TLS_CA; neither: plaintext)."""
        self.address = address or os.environ.get(self.address_variable, self.default_address)
        self.channel = channel or _channel(self.address, self.methods, token_file, tls_ca)

    def ensure_reachable(self, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        """Raises UnavailableError, saying where it tried, if the service refuses or does not answer."""
        ensure_reachable(self.channel, self.service, self.address, timeout)

    def close(self) -> None:
        self.channel.close()
