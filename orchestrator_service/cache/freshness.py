"""How far the cache has followed the store's event log, and how far it must have followed before a
decision may be taken from it.

The orchestrator's own writes go into the cache at once (the store answers with the rows), ahead
of the feed, which may still be working through a burst of other clients' writes committed before
ours. A decision taken then sees our write beside a past in which those earlier writes are
missing: a phase just approved, its tasks not read yet, looked like "all of its (zero) tasks are
done". So every write's answer raises the mark (`saw`), and a decision first waits until the feed
has applied the log up to it (`reached`): everything committed before our write is then in the
cache too. Events from the feed need no wait: the log is applied in order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time

log = logging.getLogger("cw.orchestrator")

# A decision that waited this long for the feed says so in the log (once per wait).
SLOW_WAIT_SECONDS = 5.0


class Freshness:
    def __init__(self) -> None:
        self.applied = 0  # every event up to this sequence is in the cache
        self.needed = 0  # the newest sequence a write of ours was answered with
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._reloading = False  # the log was replaced: nothing is fresh until listed again

    def saw(self, sequence: int) -> None:
        """A write of ours was answered with this sequence (its rows are cached already)."""
        self.needed = max(self.needed, sequence)

    def applied_up_to(self, sequence: int) -> None:
        """The feed has applied every event up to `sequence`."""
        self.applied = max(self.applied, sequence)
        self._reloading = False
        while self._waiting and self._waiting[0][0] <= self.applied:
            _, _, waiter = heapq.heappop(self._waiting)
            if not waiter.done():
                waiter.set_result(None)

    def restart(self) -> None:
        """The store's log is not the one our sequences came from (its database was replaced): the
        marks start again from the next listing, which then releases every decision waiting."""
        self.applied = self.needed = 0
        self._reloading = True
        self._waiting = [(0, order, waiter) for _, order, waiter in self._waiting]
        heapq.heapify(self._waiting)

    async def reached(self, sequence: int | None = None) -> None:
        """Returns once the cache holds every event up to `sequence` (default: the newest write of
        ours answered so far)."""
        target = self.needed if sequence is None else sequence
        if target <= self.applied and not self._reloading:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (target, next(self._order), waiter))
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), SLOW_WAIT_SECONDS)
        except TimeoutError:
            log.info("a decision waits for the event feed: applied %d, needs %d", self.applied, target)
            await waiter
        finally:
            waited = time.monotonic() - started
            if waited > SLOW_WAIT_SECONDS:
                log.info("the event feed caught up after %.1fs", waited)
