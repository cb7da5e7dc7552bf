"""Channels with a default deadline on every unary call and gRPC-level retries of UNAVAILABLE.

Retries are configured through gRPC's service config, for the calls that are safe to repeat: reads,
and creates (the SDK gives every create a request_id, so a repeat makes nothing new). Those calls
also wait for the connection to be ready (within their deadline), so a server that restarts is
waited for rather than failed on. Streams get no default deadline: they are meant to stay open.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import grpc

from clients.sdk.credentials import authenticated_channel
from clients.sdk.errors import UnavailableError

DEFAULT_STORE = "127.0.0.1:50051"
DEFAULT_ORCHESTRATOR = "127.0.0.1:50052"
DEFAULT_TIMEOUT = "30s"
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.5s",
    "maxBackoff": "5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_STORE_SERVICES = (
    "account",
    "agent",
    "chat_session",
    "conversation",
    "event",
    "initiative",
    "log_chunk",
    "message",
    "page",
    "phase",
    "project",
    "proposal",
    "review_comment",
    "task",
)
STORE_MODULES = tuple(importlib.import_module(f"cw.store.v1.{name}_pb2") for name in _STORE_SERVICES)
_SAFE_TO_REPEAT = ("Get", "List", "Count", "Create", "ApprovePhase")


def _unary_methods(modules: tuple[ModuleType, ...]) -> Iterator[dict[str, str]]:
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if not method.server_streaming:
                    yield {"service": service.full_name, "method": method.name}


def service_config(modules: tuple[ModuleType, ...]) -> str:
    methods = list(_unary_methods(modules))
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


def ensure_reachable(channel: grpc.Channel, what: str, address: str, timeout: float) -> None:
    """Fails fast, with a clear message, when nothing answers at the address."""
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        message = f"cannot reach the {what} at {address}"
        raise UnavailableError(grpc.StatusCode.UNAVAILABLE, message, "UNREACHABLE") from None


def _channel(
    address: str, modules: tuple[ModuleType, ...], token_file: Path | None, tls_ca: Path | None
) -> grpc.Channel:
    options = [("grpc.enable_retries", 1), ("grpc.service_config", service_config(modules))]
    return authenticated_channel(address, options, token_file, tls_ca)


class ServiceClient:
    """One channel to one of cw's services, carrying the client token: what StoreClient and
    OrchestratorClient share. Subclasses name the service and make their stubs in `bind`."""

    service: ClassVar[str]
    address_variable: ClassVar[str]
    default_address: ClassVar[str]
    modules: ClassVar[tuple[ModuleType, ...]]

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
        self.channel = channel or _channel(self.address, self.modules, token_file, tls_ca)
        self.bind(self.channel)

    def bind(self, channel: grpc.Channel) -> None:
        raise NotImplementedError

    def ensure_reachable(self, timeout: float = 5.0) -> None:
        """Raises UnavailableError after `timeout` seconds if the service does not answer."""
        ensure_reachable(self.channel, self.service, self.address, timeout)

    def close(self) -> None:
        self.channel.close()
