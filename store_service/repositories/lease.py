from datetime import datetime, timedelta
from typing import Protocol

from store_service.db.models import Lease


class LeaseRepository(Protocol):
    def now(self) -> datetime:
        """The clock that decides expiry (the database's, when it has one all stores share)."""
        ...

    def find(self, name: str) -> Lease | None: ...

    def acquire(self, name: str, owner: str, ttl: timedelta, now: datetime) -> Lease:
        """Takes the lease (free, expired, or already the owner's); LeaseRefused (LEASE_HELD) while
        another owner holds it unexpired."""
        ...

    def renew(self, name: str, owner: str, ttl: timedelta, now: datetime) -> Lease:
        """Extends the owner's unexpired lease; LeaseRefused (LEASE_NOT_HELD) otherwise."""
        ...

    def release(self, name: str, owner: str) -> None:
        """Deletes the owner's lease; nothing when there is none; LeaseRefused when another holds it."""
        ...
