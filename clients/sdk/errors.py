"""Typed exceptions for failed calls, carrying the gRPC code and the ErrorInfo reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status
else:
    # Read only when a call fails.
    (error_details_pb2,) = lazy_modules("google.rpc", "error_details_pb2")
    (rpc_status,) = lazy_modules("grpc_status", "rpc_status")


class CwError(Exception):
    """A failed call. `code` is the gRPC status code, `reason` the ErrorInfo reason (may be empty),
    `violations` the BadRequest fields (name, description)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason
        self.metadata = metadata or {}
        self.violations = violations or []

    def __str__(self) -> str:
        return f"{self.message} ({self.code.name})"


class NotFoundError(CwError):
    pass


class InvalidArgumentError(CwError):
    pass


class AlreadyExistsError(CwError):
    pass


class FailedPreconditionError(CwError):
    pass


class UnavailableError(CwError):
    pass


class UnauthenticatedError(CwError):
    pass


class PermissionDeniedError(CwError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[CwError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}


def from_rpc_error(error: grpc.RpcError) -> CwError:
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name
    reason, metadata, violations = "", {}, []
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return _BY_CODE.get(code, CwError)(code, message, reason, metadata, violations)
