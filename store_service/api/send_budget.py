"""How many event messages the streams of one identity may send per second, all streams together.

Sending a message costs the store about the same whether the client reads it or not: gRPC's client
takes megabytes into its transport buffer before an unread stream pushes back, and a stream that
replays the log from its start has tens of thousands of events to send. Without a bound, a few
hundred such streams take the whole store. With it, the streams of one identity take at most this
rate (at some 20-50 microseconds of CPU per message, a fraction of one core); every other call
keeps the rest, and the streams only lag: no event is lost or repeated (api/event_feed.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from cw_edge.tokens import Identity

# Messages per second for the streams of one identity, and how many may go at once after a pause.
# The orchestrator's streams carry the work; people's tools watch it, a few hundred events a second
# at most, so theirs is a small share of the store even when none of it is read.
RATE = 12_000
CLIENT_RATE = 3_000
BURST = 2_000


class SendBudget:
    """A token bucket; streams that have to wait are served in turn (the lock is first come,
    first served), so each stream of an identity gets its share."""

    def __init__(self, rate: float = RATE, burst: float = BURST, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self._turns = asyncio.Lock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    async def spend(self) -> None:
        """Takes one message's token, waiting for it when the budget is spent."""
        if not self._turns.locked() and self._refill() >= 1:
            self._tokens -= 1
            return
        async with self._turns:
            while self._refill() < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
            self._tokens -= 1


def budget_for(identity: Identity | None) -> SendBudget:
    return SendBudget(RATE if identity is Identity.ORCHESTRATOR else CLIENT_RATE)
