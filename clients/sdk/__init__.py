"""The cw Python SDK: typed clients for the store and the orchestrator.

from clients.sdk import StoreClient, OrchestratorClient
store = StoreClient()            # $CW_STORE, else 127.0.0.1:50051; token: $CW_HOME/auth/client.token
project = store.create_project("app", "/path/to/repo")
"""

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
from clients.sdk.orchestrator import OrchestratorClient
from clients.sdk.store import StoreClient

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
