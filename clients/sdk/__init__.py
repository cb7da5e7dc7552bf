"""The cw Python SDK: typed clients for the store and the orchestrator.

from clients.sdk import StoreClient, OrchestratorClient
store = StoreClient()            # $CW_STORE, else 127.0.0.1:50051; token: $CW_HOME/auth/client.token
project = store.create_project("app", "/path/to/repo")

The clients are imported on first use (a command that talks to the store only never imports the
orchestrator's client and messages: tests/e2e/test_cli_imports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clients.sdk.errors import (
    AlreadyExistsError,
    CwError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from clients.sdk.lazy import import_module

if TYPE_CHECKING:
    from clients.sdk.orchestrator import OrchestratorClient
    from clients.sdk.store import StoreClient

_CLIENTS = {"OrchestratorClient": "clients.sdk.orchestrator", "StoreClient": "clients.sdk.store"}

__all__ = [
    "AlreadyExistsError",
    "CwError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "OrchestratorClient",
    "PermissionDeniedError",
    "StoreClient",
    "UnauthenticatedError",
    "UnavailableError",
]


def __getattr__(name: str) -> Any:
    """`StoreClient` and `OrchestratorClient`, imported when first asked for."""
    if name not in _CLIENTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found = getattr(import_module(_CLIENTS[name]), name)
    globals()[name] = found
    return found
