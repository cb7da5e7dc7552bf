"""This orchestrator's lease `orchestrator/<name>`, and what the others' leases say.

It is taken at start (waiting, for as long as one ttl, for a lease this orchestrator's name still
holds under another owner to lapse), renewed every third of its ttl, and taken again when it lapsed
(the store was out of reach longer than the ttl; other orchestrators may have taken its runs over
meanwhile, and it ends what is left of them as their rows say: controllers/agents.py). Every round
also reads every orchestrator's lease, so the takeovers controller knows which ones died.

Fencing: an orchestrator that cannot renew (the store is out of its reach) for most of its ttl,
while others live, tells its `fence_listeners` (core.py ends its agents' processes and starts no
run), so that its runs never work on once another may take them over; it tells them again, with
False, once a renewal succeeds. A stopped orchestrator (SIGSTOP, a frozen machine) cannot: so after
every renewal and every read of the leases it also writes its agents' deadline in its workspace's
fence file, which their shims act on by themselves (agents/shim.py, policy.fence_deadline).

The owner written on the lease is the workspace's own id (`orchestrator.id` in it, made once): a
restarted orchestrator takes its lease back at once, while another one given the same `--name`
elsewhere is refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from orchestrator_service.agents import shim
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.leases import LeaseHeld, LeaseLost, Leases
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.events import event
from orchestrator_service.writes import Writer

log = logging.getLogger("cw.orchestrator")

OWNER_FILE = "orchestrator.id"


class NameTaken(Exception):
    """Another live orchestrator holds this orchestrator's name."""


def owner_id(workspace: Path) -> str:
    """The workspace's id, made on first use and kept in it."""
    path = workspace / OWNER_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        workspace.mkdir(parents=True, exist_ok=True)
        owner = secrets.token_hex(8)
        path.write_text(owner + "\n")
        return owner


class Membership:
    def __init__(self, leases: Leases, writer: Writer, name: str, ttl: float, fence_file: Path | None = None) -> None:
        self.leases = leases
        self.writer = writer
        self.name = name
        self.ttl = ttl
        self.peers = Peers(name)
        self.listeners: list[Callable[[Peers], None]] = []
        self.fence_listeners: list[Callable[[bool], None]] = []
        self.fenced = False
        # When the last acquire or renewal that succeeded was sent (time.monotonic()).
        self.renewal_sent = time.monotonic()
        # The same moment on CLOCK_BOOTTIME, which the agents' shims read the fence on.
        self.renewal_sent_boot = shim.boottime()
        self.fence_file = fence_file

    @property
    def lease(self) -> str:
        return policy.lease_name(self.name)

    async def join(self) -> None:
        """Takes this orchestrator's lease; waits out one held under another owner for as long as
        it could still be a previous run's, then gives up (NameTaken)."""
        deadline = asyncio.get_running_loop().time() + 2 * self.ttl + 1
        while True:
            try:
                await self._held(self.leases.acquire)
                break
            except LeaseHeld as held:
                if asyncio.get_running_loop().time() > deadline:
                    raise NameTaken(
                        f"another orchestrator runs as {self.name!r} ({held}): give this one another --name"
                    ) from None
                log.warning("waiting for lease %s: %s", self.lease, held)
                await asyncio.sleep(self.ttl / 3)
        await self._joined(lapsed=False)
        await self.refresh()

    async def _joined(self, lapsed: bool) -> None:
        note = event("orchestrator:joined", None, name=self.name, ttl_seconds=self.ttl, lapsed=lapsed or None)
        await self.writer.append([note])
        log.info(
            "orchestrator %s holds its lease (ttl %gs)%s", self.name, self.ttl, ", after it lapsed" if lapsed else ""
        )

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.keep()
                await self.refresh()
            except grpc.aio.AioRpcError as error:
                # The store's own words: unreachable, or answering that it cannot write (a full disk).
                why = error.details() or "the store is not reachable"
                log.warning("lease %s not renewed: %s (%s)", self.lease, why, error.code().name)

    async def guard_forever(self) -> None:
        """Fences this orchestrator while its lease may be lapsing (every tenth of its ttl)."""
        while True:
            await asyncio.sleep(self.ttl / 10)
            silent = time.monotonic() - self.renewal_sent
            if policy.must_fence(silent, self.ttl, self.peers):
                if not self.fenced:
                    log.error("lease %s not renewed for %.1fs: ending this orchestrator's agents", self.lease, silent)
                self._fence(True)

    def _fence(self, fenced: bool) -> None:
        """Tells the listeners: every tick while fenced (a run that was starting ends too)."""
        if fenced or self.fenced:
            self.fenced = fenced
            for listener in self.fence_listeners:
                listener(fenced)

    async def _held(self, take: Callable[[str, float], Awaitable[object]]) -> None:
        """An acquire or a renewal: its send time kept once it succeeded."""
        sent, sent_boot = time.monotonic(), shim.boottime()
        await take(self.lease, self.ttl)
        self.renewal_sent, self.renewal_sent_boot = sent, sent_boot
        self._write_fence()
        self._fence(False)

    def _write_fence(self) -> None:
        """The agents' deadline, for their shims (agents/shim.py): when this orchestrator, were it
        stopped now, would fence them itself."""
        if self.fence_file is None:
            return
        deadline = policy.fence_deadline(self.renewal_sent_boot, self.ttl, self.peers)
        try:
            shim.write_fence(self.fence_file, deadline, policy.fence_poll(self.ttl))
        except OSError as error:
            log.error("cannot write the agents' fence %s: %s", self.fence_file, error)

    async def keep(self) -> None:
        try:
            await self._held(self.leases.renew)
        except LeaseLost as lost:
            log.warning("lease %s lapsed (%s): taking it again", self.lease, lost)
            try:
                await self._held(self.leases.acquire)
            except LeaseHeld as held:
                log.error("lease %s is held by another orchestrator of the same name: %s", self.lease, held)
                return
            await self._joined(lapsed=True)

    async def refresh(self) -> None:
        leases, read_time = await self.leases.listing(policy.ORCHESTRATOR_LEASES)
        self.peers = policy.peers_from(self.name, leases, read_time)
        self._write_fence()
        for listener in self.listeners:
            listener(self.peers)
