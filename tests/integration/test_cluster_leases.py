"""The orchestrator's side of leases against a real store: one merge into a branch at a time across
orchestrators (MergeLocks), and an orchestrator that can no longer renew its lease fences itself
before the lease may lapse, but only when others could take its runs over (Membership)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cw.store.v1 import lease_pb2
from cw_edge.tokens import Identity
from orchestrator_service.agents import shim
from orchestrator_service.cache.state import Cache
from orchestrator_service.cluster.leases import Busy, Leases, MergeLocks
from orchestrator_service.cluster.membership import Membership
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer
from tests.support import RunningStore, store_in_thread

TTL = 1.0


def _client(store: RunningStore) -> StoreClient:
    return StoreClient(store.address, store.handle.auth.tokens[Identity.ORCHESTRATOR])


def test_one_orchestrator_at_a_time_merges_into_a_branch(store: RunningStore) -> None:
    inside: list[str] = []
    overlaps: list[list[str]] = []

    async def merge(locks: MergeLocks, owner: str) -> None:
        for _ in range(3):
            async with locks.hold("phase-1", "initiative-1", wait=30):
                inside.append(owner)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                await asyncio.sleep(0.05)  # the merge's git work; the other owner polls meanwhile
                inside.remove(owner)

    async def scenario() -> None:
        clients = [_client(store) for _ in range(3)]
        locks = [MergeLocks(Leases(client, f"owner-{index}"), TTL) for index, client in enumerate(clients)]
        await asyncio.gather(*(merge(lock, f"owner-{index}") for index, lock in enumerate(locks)))
        async with locks[0].hold("phase-1"):
            with pytest.raises(Busy, match="owner-0"):
                async with locks[1].hold("phase-1", wait=0.3):
                    raise AssertionError("two owners hold one merge lease")
            async with locks[1].hold("phase-2"):  # another branch: no wait
                pass
        for client in clients:
            await client.close()

    asyncio.run(scenario())
    assert not overlaps


def test_a_merge_lease_outlives_its_ttl_while_renewed(store: RunningStore) -> None:
    async def scenario() -> None:
        first, second = _client(store), _client(store)
        holder, other = MergeLocks(Leases(first, "a"), 0.6), MergeLocks(Leases(second, "b"), 0.6)
        async with holder.hold("phase-1"):
            await asyncio.sleep(1.5)  # past two ttls: held only because it is renewed
            with pytest.raises(Busy):
                async with other.hold("phase-1"):
                    pass
        async with other.hold("phase-1", wait=5):  # released on the way out: free at once
            pass
        await first.close()
        await second.close()

    asyncio.run(scenario())


class CountingLeases(Leases):
    """Leases that count the acquires and releases sent to the store."""

    def __init__(self, store: StoreClient, owner: str) -> None:
        super().__init__(store, owner)
        self.sent: list[str] = []

    async def acquire(self, name: str, ttl: float) -> lease_pb2.Lease:
        self.sent.append("acquire")
        return await super().acquire(name, ttl)

    async def release(self, name: str) -> None:
        self.sent.append("release")
        await super().release(name)


def test_a_lingering_merge_lease_serves_the_next_merge_and_is_let_go_after(store: RunningStore) -> None:
    """A merges controller's hold keeps the lease a moment: the phase's next task's merge takes it
    over without asking the store, another orchestrator waits at most that moment more."""

    async def scenario() -> None:
        first, second = _client(store), _client(store)
        leases, others = CountingLeases(first, "a"), CountingLeases(second, "b")
        holder, other = MergeLocks(leases, TTL), MergeLocks(others, TTL)
        for _ in range(3):
            async with holder.hold("phase-1", linger=0.5):
                pass
        assert leases.sent == ["acquire"]
        for _ in range(3):  # the merges of three tasks waiting for the branch: the store asked once
            with pytest.raises(Busy, match="'a'"):
                async with other.hold("phase-1"):
                    pass
        assert others.sent == ["acquire"]
        started = time.monotonic()
        async with other.hold("phase-1", wait=5):  # free once the linger is over
            assert time.monotonic() - started < 2
        assert leases.sent == ["acquire", "release"]
        async with holder.hold("phase-2", linger=30):
            pass
        await holder.close()  # a stopping orchestrator lets go of what lingers
        async with other.hold("phase-2"):
            pass
        await first.close()
        await second.close()

    asyncio.run(scenario())


async def _member(store: RunningStore, name: str, ttl: float = TTL) -> tuple[Membership, StoreClient, list[bool]]:
    client = _client(store)
    membership = Membership(Leases(client, f"owner-{name}"), Writer(client, Cache()), name, ttl)
    told: list[bool] = []
    membership.fence_listeners.append(told.append)
    await membership.join()
    return membership, client, told


async def _until(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("peers", [True, False])
def test_an_orchestrator_cut_off_from_the_store_fences_itself_before_its_lease_may_lapse(
    tmp_path: Path, peers: bool
) -> None:
    """With a peer alive, it is told to fence before one ttl has passed since its last renewal was
    sent (so before the store could let the lease lapse), and told again, False, once it renews;
    alone, nobody could take its runs over: its agents go on working through the outage."""

    ttl = 2.0
    fenced_at: list[float] = []

    async def scenario() -> None:
        with store_in_thread(tmp_path / "store.db") as store:
            member, client, told = await _member(store, "east", ttl)
            member.fence_listeners.append(lambda _: fenced_at.append(time.monotonic()))
            if peers:
                _, other_client, _ = await _member(store, "west", ttl)
                await other_client.close()
            await member.refresh()
            assert member.peers.others_alive() is peers
            tasks = [asyncio.create_task(member.run_forever()), asyncio.create_task(member.guard_forever())]
            last_sent = member.renewal_sent
        # The store is gone: renewals fail from now on.
        if peers:
            await _until("the fence", lambda: told == [True], 2 * ttl)
            assert fenced_at[0] - last_sent < ttl  # the store lets the lease lapse a ttl after it
        else:
            await asyncio.sleep(2 * ttl)
            assert told == []
        for task in tasks:
            task.cancel()
        await client.close()

    asyncio.run(scenario())


def test_a_fenced_orchestrator_is_unfenced_by_its_next_renewal(store: RunningStore) -> None:
    async def scenario() -> None:
        member, client, told = await _member(store, "east")
        _, other, _ = await _member(store, "west")
        await member.refresh()
        member.renewal_sent -= TTL  # as if the store had not answered for a whole ttl
        guard = asyncio.create_task(member.guard_forever())
        await _until("the fence", lambda: told[:1] == [True], 2 * TTL)
        await member.keep()
        assert told[-1] is False and not member.fenced
        guard.cancel()
        await client.close()
        await other.close()

    asyncio.run(scenario())


def test_the_agents_deadline_is_written_after_each_renewal_while_others_live(
    store: RunningStore, tmp_path: Path
) -> None:
    """The fence file its agents' shims read: no deadline while alone, then three quarters of the
    ttl after the last renewal was sent (on CLOCK_BOOTTIME), moved on by every renewal."""

    async def scenario() -> None:
        client = _client(store)
        fence = tmp_path / shim.FENCE_FILE
        member = Membership(Leases(client, "owner-east"), Writer(client, Cache()), "east", TTL, fence)
        before = shim.boottime()
        await member.join()
        assert shim.read_fence(fence) == shim.Fence(None, TTL / 10)
        _, other, _ = await _member(store, "west")
        await member.refresh()
        first = shim.read_fence(fence).deadline
        assert first is not None and before + 0.75 * TTL <= first <= shim.boottime() + 0.75 * TTL
        await member.keep()
        assert (shim.read_fence(fence).deadline or 0) > first
        await client.close()
        await other.close()

    asyncio.run(scenario())
