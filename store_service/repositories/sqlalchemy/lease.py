"""Leases written with compare-and-set statements: an update applies only to the row as it was read
(its owner and expiry), an insert only where there is no row. Whatever the database and however many
stores write at once, of two writers racing for one lease exactly one wins; the other reads the row
again and decides again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, exc, select, text, update
from sqlalchemy.orm import Session

from store_service.db.models import Lease, utcnow
from store_service.db.update_times import next_update_time
from store_service.domain.errors import LeaseRefused

# Lost races before giving up on a lease that keeps changing hands (each one a write that won).
ATTEMPTS = 5


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()


def database_now(connection: Connection) -> datetime:
    """The clock that decides expiry (naive UTC): PostgreSQL's, so that store replicas on several
    machines decide by one clock; a SQLite file has one store, on its own machine: the store's."""
    if connection.dialect.name == "postgresql":
        now: datetime = connection.scalar(text("SELECT clock_timestamp() AT TIME ZONE 'UTC'"))
        return now
    return utcnow()


def held_elsewhere(lease: Lease) -> LeaseRefused:
    return LeaseRefused(
        f"lease {lease.name!r} is held by {lease.owner!r} until {_iso(lease.expire_time)}",
        "LEASE_HELD",
        lease.owner,
        _iso(lease.expire_time),
    )


def not_held(name: str, lease: Lease | None, owner: str) -> LeaseRefused:
    """Why `owner` cannot renew or release the lease. Its own lease that expired (renewals that
    failed, a store that could not write) lapsed: it was called "not yours", naming the caller."""
    if lease is None:
        return LeaseRefused(f"lease {name!r} is not held by anyone: acquire it", "LEASE_NOT_HELD")
    if lease.owner == owner:
        return LeaseRefused(
            f"lease {name!r} lapsed at {_iso(lease.expire_time)}, before {owner!r} renewed it: acquire it again",
            "LEASE_NOT_HELD",
            lease.owner,
            _iso(lease.expire_time),
        )
    return LeaseRefused(
        f"lease {name!r} is not yours: {lease.owner!r} holds it until {_iso(lease.expire_time)}",
        "LEASE_NOT_HELD",
        lease.owner,
        _iso(lease.expire_time),
    )


class SqlAlchemyLeaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def now(self) -> datetime:
        return database_now(self.session.connection())

    def find(self, name: str) -> Lease | None:
        query = select(Lease).where(Lease.name == name).execution_options(populate_existing=True)
        return self.session.scalars(query).first()

    def acquire(self, name: str, owner: str, ttl: timedelta, now: datetime) -> Lease:
        for _ in range(ATTEMPTS):
            current = self.find(name)
            if current is None:
                if self._insert(name, owner, now + ttl, now):
                    return self._read(name)
                continue
            kept = current.expire_time > now
            if kept and current.owner != owner:
                raise held_elsewhere(current)
            acquired = current.acquire_time if kept else now
            if self._swap(current, owner, now + ttl, acquired, now):
                return self._read(name)
        raise held_elsewhere(self._read(name))

    def renew(self, name: str, owner: str, ttl: timedelta, now: datetime) -> Lease:
        for _ in range(ATTEMPTS):
            current = self.find(name)
            if current is None or current.owner != owner or current.expire_time <= now:
                raise not_held(name, current, owner)
            if self._swap(current, owner, now + ttl, current.acquire_time, now):
                return self._read(name)
        raise not_held(name, self.find(name), owner)

    def release(self, name: str, owner: str) -> None:
        current = self.find(name)
        if current is None:
            return
        if current.owner != owner:
            raise not_held(name, current, owner)
        self.session.execute(
            delete(Lease).where(Lease.name == name, Lease.owner == owner),
            execution_options={"synchronize_session": False},
        )

    def _read(self, name: str) -> Lease:
        found = self.find(name)
        if found is None:  # only a release between our write and this read, in our own transaction
            raise LeaseRefused(f"lease {name!r} vanished while it was taken", "LEASE_NOT_HELD")
        return found

    def _insert(self, name: str, owner: str, expire_time: datetime, now: datetime) -> bool:
        """False when another writer inserted the row first."""
        try:
            with self.session.begin_nested():
                self.session.add(
                    Lease(
                        name=name,
                        owner=owner,
                        expire_time=expire_time,
                        acquire_time=now,
                        create_time=now,
                        update_time=now,
                    )
                )
        except exc.IntegrityError:
            return False
        return True

    def _swap(self, read: Lease, owner: str, expire_time: datetime, acquire_time: datetime, now: datetime) -> bool:
        """Writes the lease only if it is still as `read`; False when it is not."""
        statement = (
            update(Lease)
            .where(Lease.name == read.name, Lease.owner == read.owner, Lease.expire_time == read.expire_time)
            .values(
                owner=owner,
                expire_time=expire_time,
                acquire_time=acquire_time,
                update_time=next_update_time(read.update_time, now),
            )
        )
        result = self.session.execute(statement, execution_options={"synchronize_session": False})
        return bool(getattr(result, "rowcount", 0) == 1)
