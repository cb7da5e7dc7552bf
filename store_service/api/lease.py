"""LeaseService: named claims with an owner and an expiry, the store's clock deciding expiry.

Orchestrators hold `orchestrator/<name>` while they live and `merge/<id>` while they merge into that
branch (orchestrator_service/cluster/). Writing one is the orchestrator's alone
(permissions.ORCHESTRATOR_ONLY_METHODS); anyone may list them. Each write is one compare-and-set in
its own transaction (repositories/sqlalchemy/lease.py). Expiry is decided by the database's clock
on PostgreSQL (one clock for every replica), by the store's own on SQLite.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf import empty_pb2

from cw.store.v1 import lease_pb2, lease_pb2_grpc
from store_service.api import convert
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Lease
from store_service.domain.errors import FieldViolation, InvalidArgument
from store_service.repositories.sqlalchemy.lease import database_now

LEASE = Resource(Lease, lease_pb2.Lease, "lease", lambda uow: uow.leases, key="name")
# A lease outliving a day is a claim nobody can take back: refused.
MAX_TTL = timedelta(days=1)


def _claim(request: Any) -> tuple[str, str]:
    violations = [FieldViolation(name, "is required") for name in ("name", "owner") if not getattr(request, name)]
    if violations:
        raise InvalidArgument(violations)
    return request.name, request.owner


def _ttl(request: Any) -> timedelta:
    if not request.HasField("ttl"):
        raise InvalidArgument.of("ttl", "is required")
    ttl: timedelta = request.ttl.ToTimedelta()
    if ttl <= timedelta(0) or ttl > MAX_TTL:
        raise InvalidArgument.of("ttl", "must be above zero and at most a day")
    return ttl


class LeaseServicer(ResourceServicer[lease_pb2.Lease], lease_pb2_grpc.LeaseServiceServicer):
    resource = LEASE

    async def AcquireLease(self, request: Any, _context: Any) -> lease_pb2.Lease:
        (name, owner), ttl = _claim(request), _ttl(request)
        return await self.db.write(lambda uow: LEASE.to_message(uow.leases.acquire(name, owner, ttl, uow.leases.now())))

    async def RenewLease(self, request: Any, _context: Any) -> lease_pb2.Lease:
        (name, owner), ttl = _claim(request), _ttl(request)
        return await self.db.write(lambda uow: LEASE.to_message(uow.leases.renew(name, owner, ttl, uow.leases.now())))

    async def ReleaseLease(self, request: Any, _context: Any) -> empty_pb2.Empty:
        name, owner = _claim(request)
        await self.db.write(lambda uow: uow.leases.release(name, owner))
        return empty_pb2.Empty()

    async def ListLeases(self, request: Any, _context: Any) -> lease_pb2.ListLeasesResponse:
        prefix = request.prefix
        criteria = [Lease.name.startswith(prefix, autoescape=True)] if prefix else []
        # Taken before the leases are read: one may read live a moment after it lapsed, never lapsed
        # while it was live.
        read_time = await self.db.fetch(lambda reads: database_now(reads.connection))
        leases, token = await self.page_of(request, LEASE, {"prefix": prefix}, criteria)
        answer = lease_pb2.ListLeasesResponse(leases=leases, next_page_token=token)
        convert.set_timestamp(answer.read_time, read_time)
        return answer
