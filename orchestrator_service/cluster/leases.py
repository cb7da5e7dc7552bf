"""Leases through the store's LeaseService, and the merge locks built on them.

A merge into a branch (a task's into its phase branch, a phase's into its initiative branch, a
phase sent back) holds `merge/<phase or initiative id>` for as long as it takes, renewed every third
of its ttl, and an asyncio lock of the same key inside this process. So only one orchestrator merges
into a branch at a time. Should a lease lapse mid-merge anyway (a stalled machine), nothing is lost:
pushes to the shared remote are never forced, so the slower merge is refused and made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
from google.protobuf import duration_pb2

from cw.store.v1 import lease_pb2, lease_pb2_grpc
from orchestrator_service.cluster import policy
from orchestrator_service.store_client import StoreClient

log = logging.getLogger("cw.orchestrator")

# How often a lease held elsewhere is asked for again while waiting for it.
POLL_SECONDS = 0.2


class LeaseHeld(Exception):
    """Another owner holds the lease; the message (the store's) names it and until when."""


class LeaseLost(Exception):
    """The lease is no longer ours (it lapsed, or another took it)."""


def _duration(seconds: float) -> duration_pb2.Duration:
    ttl = duration_pb2.Duration()
    ttl.FromTimedelta(timedelta(seconds=seconds))
    return ttl


class Leases:
    def __init__(self, store: StoreClient, owner: str) -> None:
        self.store = store
        self.owner = owner

    @functools.cached_property
    def stub(self) -> lease_pb2_grpc.LeaseServiceStub:
        """Made on first use: the in-process tests' fake store has no channel and takes no lease."""
        return lease_pb2_grpc.LeaseServiceStub(self.store.channel)

    async def acquire(self, name: str, ttl: float) -> lease_pb2.Lease:
        request = lease_pb2.AcquireLeaseRequest(name=name, owner=self.owner, ttl=_duration(ttl))
        try:
            lease: lease_pb2.Lease = await self.store.call(self.stub.AcquireLease, request)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                raise
            raise LeaseHeld(error.details() or f"lease {name!r} is held by another") from None
        return lease

    async def renew(self, name: str, ttl: float) -> lease_pb2.Lease:
        request = lease_pb2.RenewLeaseRequest(name=name, owner=self.owner, ttl=_duration(ttl))
        try:
            lease: lease_pb2.Lease = await self.store.call(self.stub.RenewLease, request)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.ABORTED:
                raise LeaseLost(error.details() or name) from None
            raise
        return lease

    async def release(self, name: str) -> None:
        request = lease_pb2.ReleaseLeaseRequest(name=name, owner=self.owner)
        with contextlib.suppress(grpc.aio.AioRpcError):  # not ours any more, or the store is away: it lapses
            await self.store.call(self.stub.ReleaseLease, request)

    async def listing(self, prefix: str) -> tuple[list[lease_pb2.Lease], float]:
        """The leases under `prefix` and the store's clock when read (seconds since the epoch)."""
        request = lease_pb2.ListLeasesRequest(prefix=prefix, page_size=1000)
        found: list[lease_pb2.Lease] = []
        read_time = 0.0
        while True:
            page = await self.store.call(self.stub.ListLeases, request)
            found += page.leases
            if not read_time:
                read_time = page.read_time.seconds + page.read_time.nanos / 1e9
            if not page.next_page_token:
                return found, read_time
            request.page_token = page.next_page_token


class Busy(Exception):
    """Another orchestrator merges into that branch now; try again shortly."""


class MergeLocks:
    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def hold(self, *target_ids: str, wait: float = 0.0) -> AsyncIterator[None]:
        """Holds the merge locks of these phases or initiatives (in the order given: a phase before
        its initiative, everywhere), waiting at most `wait` seconds for another orchestrator to let
        go of one; Busy when it does not."""
        async with contextlib.AsyncExitStack() as stack:
            deadline = time.monotonic() + wait
            for target_id in target_ids:
                await stack.enter_async_context(self._locks[target_id])
                name = policy.merge_lease(target_id)
                await self._acquire(name, deadline)
                stack.push_async_callback(self.leases.release, name)
                renewing = asyncio.create_task(self._renew(name), name=f"renew-{name}")
                stack.callback(renewing.cancel)
            yield

    async def _acquire(self, name: str, deadline: float) -> None:
        while True:
            try:
                await self.leases.acquire(name, self.ttl)
                return
            except LeaseHeld as held:
                if time.monotonic() >= deadline:
                    raise Busy(f"another orchestrator is merging there now ({held})") from None
            await asyncio.sleep(POLL_SECONDS)

    async def _renew(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.leases.renew(name, self.ttl)
            except LeaseLost:
                log.warning("lease %s lapsed while held: a push made under it may be refused and redone", name)
                return
            except grpc.aio.AioRpcError as error:
                log.warning("renewing lease %s failed: %s", name, error.code().name)
