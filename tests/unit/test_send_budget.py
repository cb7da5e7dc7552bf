"""The streams' send budget: a burst goes at once, then one message per token as time passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from store_service.api.send_budget import SendBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _turns(times: int = 5) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def _until(what: str, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls `done` on the event loop until it holds, or fails after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def test_a_burst_goes_at_once_then_each_message_waits_for_its_token() -> None:
    async def scenario() -> None:
        clock = Clock()
        budget = SendBudget(rate=1000, burst=3, clock=clock)
        for _ in range(3):
            await budget.spend()  # within the burst: no wait, whatever the clock
        first, second = asyncio.create_task(budget.spend()), asyncio.create_task(budget.spend())
        await _turns()
        assert not first.done() and not second.done()
        clock.now += 0.001  # one token
        await _until("the first waiting stream to send", first.done)
        await _turns()
        assert not second.done()  # the second waits for a token of its own
        clock.now += 0.001
        await _until("the second waiting stream to send", second.done)

    asyncio.run(scenario())
