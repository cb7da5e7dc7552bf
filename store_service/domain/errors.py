"""Errors the store's domain raises; the API layer maps each to one gRPC status code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class StoreError(Exception):
    message: str
    reason: str = "STORE_ERROR"
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class NotFound(StoreError):
    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(
            f"{resource} {resource_id!r} not found",
            "NOT_FOUND",
            {"resource": resource, "id": resource_id},
        )


class AlreadyExists(StoreError):
    def __init__(self, resource: str, field_name: str) -> None:
        super().__init__(
            f"a {resource} with this {field_name} already exists",
            "ALREADY_EXISTS",
            {"resource": resource, "field": field_name},
        )


class FailedPrecondition(StoreError):
    def __init__(self, message: str, reason: str = "FAILED_PRECONDITION", **metadata: str) -> None:
        super().__init__(message, reason, dict(metadata))


class MissingReference(FailedPrecondition):
    def __init__(self, field_name: str, resource: str, resource_id: str) -> None:
        super().__init__(
            f"{field_name}: {resource} {resource_id!r} does not exist",
            "MISSING_REFERENCE",
            field=field_name,
            resource=resource,
            id=resource_id,
        )


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(StoreError):
    """Carries every violation (the BadRequest detail) and names the first one's field in the
    ErrorInfo metadata, as the orchestrator's errors do."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        self.violations = list(violations)
        first = {"field": self.violations[0].field} if self.violations else {}
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations), "INVALID_ARGUMENT", first)

    @classmethod
    def of(cls, field_name: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field_name, description)])


class OutOfRange(StoreError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "OUT_OF_RANGE")


class Aborted(StoreError):
    """A write's precondition no longer holds: the row changed since the caller read it. Re-read,
    decide again, retry."""

    def __init__(self, resource: str, resource_id: str, field_name: str, stored: str, expected: str) -> None:
        super().__init__(
            f"{resource} {resource_id!r} changed: its {field_name} is {stored}, expected {expected}",
            "PRECONDITION_FAILED",
            {"resource": resource, "id": resource_id, "field": field_name, "stored": stored},
        )


class LeaseRefused(StoreError):
    """ABORTED: another owner holds the lease (LEASE_HELD), or the caller no longer holds it
    (LEASE_NOT_HELD); `holder` and `expire_time` say who holds it, and until when."""

    def __init__(self, message: str, reason: str, holder: str = "", expire_time: str = "") -> None:
        metadata = {"holder": holder, "expire_time": expire_time} if holder else {}
        super().__init__(message, reason, metadata)


class Unauthenticated(StoreError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "UNAUTHENTICATED")


class PermissionDenied(StoreError):
    """Beyond the caller's identity's rights; `field` names what it may not set, when a field."""

    def __init__(self, message: str, **metadata: str) -> None:
        super().__init__(message, "PERMISSION_DENIED", dict(metadata))


class ResourceExhausted(StoreError):
    """The caller holds as much of something as one caller may (open event streams)."""

    def __init__(self, message: str, **metadata: str) -> None:
        super().__init__(message, "RESOURCE_EXHAUSTED", dict(metadata))


class DiskFull(ResourceExhausted):
    """The disk under the database is full: the write rolled back whole (db/health.py)."""

    def __init__(self, message: str) -> None:
        StoreError.__init__(self, message, "DISK_FULL", {})


class DatabaseDamaged(StoreError):
    """The database file is damaged: the store refuses writes until it is repaired (db/health.py)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "DATABASE_DAMAGED", {})
