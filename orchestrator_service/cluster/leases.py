"""Leases through the store's LeaseService, and the merge locks built on them.

A merge into a branch (a task's into its phase branch, a phase's into its initiative branch, a
phase sent back) holds `merge/<phase or initiative id>` for as long as it takes, renewed every third
of its ttl, and an asyncio lock of the same key inside this process. So only one orchestrator merges
into a branch at a time. Should a lease lapse mid-merge anyway (a stalled machine), nothing is lost:
pushes to the shared remote are never forced, so the slower merge is refused and made again.

A hold may `linger`: its lease is kept (and renewed) that long after the hold ends, and the next hold
of the same branch within it takes the lease over without asking the store again. The merges
controller lingers, so a phase whose tasks finish one after another is merged under one lease, not
one acquire and release per task; another orchestrator wanting that branch waits at most the linger
longer. A lingering lease is taken over only while its last renewal is recent enough to be sure it
is still ours (`_Held.sure`); otherwise it is acquired again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.protobuf import duration_pb2

from cw.store.v1 import lease_pb2, lease_pb2_grpc
from orchestrator_service.cluster import policy
from orchestrator_service.store_client import StoreClient

log = logging.getLogger("cw.orchestrator")

# How often a lease held elsewhere is asked for again while waiting for it.
POLL_SECONDS = 0.2
# How long a refused lease is not asked for again, whoever here wants it.
REASK_SECONDS = 0.5


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


@dataclass
class _Held:
    """A merge lease this process holds: its renewer, and until when it is surely ours (monotonic
    seconds: a ttl after the last acquire or renewal that succeeded was sent)."""

    renewing: asyncio.Task[None]
    ours_until: float
    letting_go: asyncio.Task[None] | None = None

    def sure(self, now: float, margin: float) -> bool:
        return not self.renewing.done() and now < self.ours_until - margin


class MergeLocks:
    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._held: dict[str, _Held] = {}
        # Releases sent and not answered yet: a new acquire of the name waits for its release,
        # which could otherwise reach the store after it and release the new hold.
        self._releasing: dict[str, asyncio.Task[None]] = {}
        # Leases the store refused lately: why, and until when they are not asked for again.
        self._refused: dict[str, tuple[str, float]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, *target_ids: str, wait: float = 0.0, linger: float = 0.0) -> AsyncIterator[None]:
        """Holds the merge locks of these phases or initiatives (in the order given: a phase before
        its initiative, everywhere), waiting at most `wait` seconds for another orchestrator to let
        go of one; Busy when it does not. The leases are kept `linger` seconds after (module doc)."""
        async with contextlib.AsyncExitStack() as stack:
            deadline = time.monotonic() + wait
            for target_id in target_ids:
                await stack.enter_async_context(self._locks[target_id])
                name = policy.merge_lease(target_id)
                await self._take(name, deadline)
                stack.push_async_callback(self._let_go, name, linger)
            yield

    async def _take(self, name: str, deadline: float) -> None:
        """The lease, ours: a lingering one taken over while surely still ours, else acquired."""
        held = self._held.get(name)
        if held is not None:
            if held.letting_go is not None:
                held.letting_go.cancel()  # it has not released yet: `_release` pops before awaiting
                held.letting_go = None
            if held.sure(time.monotonic(), self.ttl / 3):
                return
            await self._release(name)  # lapsed, or not renewed lately: acquired again below
        releasing = self._releasing.get(name)
        if releasing is not None:
            await asyncio.shield(releasing)
        sent = time.monotonic()
        await self._acquire(name, deadline)
        renewing = asyncio.create_task(self._renew(name), name=f"renew-{name}")
        self._held[name] = _Held(renewing, sent + self.ttl)

    async def _let_go(self, name: str, linger: float) -> None:
        held = self._held.get(name)
        if held is None:
            return
        if linger <= 0:
            await self._release(name)
            return
        held.letting_go = asyncio.create_task(self._release_after(name, linger), name=f"let-go-{name}")

    async def _release_after(self, name: str, linger: float) -> None:
        await asyncio.sleep(linger)
        await self._release(name)

    async def _release(self, name: str) -> None:
        """Forgets the lease at once (no await before: a hold taking it over sees it gone), then
        releases it at the store."""
        held = self._held.pop(name, None)
        if held is None:
            return
        held.renewing.cancel()
        releasing = asyncio.ensure_future(self.leases.release(name))
        self._releasing[name] = releasing
        releasing.add_done_callback(lambda done: self._released(name, done))
        await asyncio.shield(releasing)

    def _released(self, name: str, done: asyncio.Future[None]) -> None:
        if self._releasing.get(name) is done:
            del self._releasing[name]

    async def close(self) -> None:
        """Releases every lease held now, lingering ones too (a stopping orchestrator, its merges
        stopped first): another orchestrator need not wait for them to lapse."""
        for name, held in list(self._held.items()):
            if held.letting_go is not None:
                held.letting_go.cancel()
            await self._release(name)

    async def _acquire(self, name: str, deadline: float) -> None:
        """Asks the store for the lease, again every POLL_SECONDS until `deadline`; a lease refused
        is not asked for again within REASK_SECONDS (by any hold here: the merges of many tasks
        waiting for one branch ask once between them)."""
        while True:
            if time.monotonic() >= self._refused.get(name, ("", 0.0))[1]:
                try:
                    await self.leases.acquire(name, self.ttl)
                    self._refused.pop(name, None)
                    return
                except LeaseHeld as held:
                    self._refused[name] = (str(held), time.monotonic() + REASK_SECONDS)
            if time.monotonic() >= deadline:
                why = self._refused.get(name, ("held by another", 0.0))[0]
                raise Busy(f"another orchestrator is merging there now ({why})")
            await asyncio.sleep(POLL_SECONDS)

    async def _renew(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            sent = time.monotonic()
            try:
                await self.leases.renew(name, self.ttl)
            except LeaseLost:
                log.warning("lease %s lapsed while held: a push made under it may be refused and redone", name)
                return
            except grpc.aio.AioRpcError as error:
                log.warning("renewing lease %s failed: %s", name, error.code().name)
                continue
            held = self._held.get(name)
            if held is not None:
                held.ours_until = sent + self.ttl
