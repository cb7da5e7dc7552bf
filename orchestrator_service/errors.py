"""Errors the orchestrator reports to its clients, each with the gRPC code it maps to."""

from __future__ import annotations

import grpc


class OrchestratorError(Exception):
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, reason: str, **metadata: str) -> None:
        super().__init__(message)
        self.message, self.reason, self.metadata = message, reason, metadata


class NotAllowedNow(OrchestratorError):
    """A state transition that is not allowed from the current state."""


class BadRequest(OrchestratorError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}", "INVALID_ARGUMENT", field=field)
        self.field, self.description = field, description
