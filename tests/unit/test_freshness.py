"""The cache's freshness marks (orchestrator_service/cache/freshness.py) and the feed's batches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from orchestrator_service.cache.feed import _batches
from orchestrator_service.cache.freshness import Freshness


def test_a_decision_waits_until_the_feed_has_applied_our_newest_write() -> None:
    async def scenario() -> list[str]:
        freshness, happened = Freshness(), []
        freshness.applied_up_to(10)
        freshness.saw(15)

        async def decide() -> None:
            await freshness.reached()
            happened.append(f"decided at {freshness.applied}")

        decision = asyncio.create_task(decide())
        await asyncio.sleep(0)
        freshness.applied_up_to(14)
        await asyncio.sleep(0)
        happened.append("14 applied")
        freshness.applied_up_to(15)
        await decision
        return happened

    assert asyncio.run(scenario()) == ["14 applied", "decided at 15"]


def test_nothing_waits_when_the_feed_is_ahead() -> None:
    async def scenario() -> None:
        freshness = Freshness()
        freshness.saw(3)
        freshness.applied_up_to(7)
        await asyncio.wait_for(freshness.reached(), 1)
        await asyncio.wait_for(freshness.reached(5), 1)

    asyncio.run(scenario())


def test_a_replaced_log_releases_decisions_once_listed_again() -> None:
    """A new database numbers from 1 again: a wait for the old log's sequence would never end."""

    async def scenario() -> None:
        freshness = Freshness()
        freshness.saw(900)
        waiting = asyncio.create_task(freshness.reached())
        await asyncio.sleep(0)
        freshness.restart()
        await asyncio.sleep(0)
        assert not waiting.done()  # not before the cache is listed again
        freshness.applied_up_to(0)  # an empty new log
        await asyncio.wait_for(waiting, 1)
        assert freshness.needed == 0

    asyncio.run(scenario())


async def _items(values: list[int], fail: bool = False) -> AsyncIterator[int]:
    for value in values:
        yield value
        await asyncio.sleep(0)
    if fail:
        raise RuntimeError("stream dropped")


def test_batches_keep_order_and_size_and_raise_after_what_came_before() -> None:
    async def collect(fail: bool) -> list[int]:
        seen: list[int] = []
        try:
            async for batch in _batches(_items(list(range(10)), fail=fail), 3):
                assert 0 < len(batch) <= 3
                seen += batch
        except RuntimeError as error:
            assert str(error) == "stream dropped"
            seen.append(-1)
        return seen

    assert asyncio.run(collect(fail=False)) == list(range(10))
    assert asyncio.run(collect(fail=True)) == [*range(10), -1]


def test_after_a_replaced_log_a_new_decision_waits_for_the_listing_too() -> None:
    async def scenario() -> None:
        freshness = Freshness()
        freshness.applied_up_to(50)
        freshness.restart()
        later = asyncio.create_task(freshness.reached())
        await asyncio.sleep(0)
        assert not later.done()  # the cache still holds the replaced database's rows
        freshness.applied_up_to(3)
        await asyncio.wait_for(later, 1)

    asyncio.run(scenario())


def test_a_consumer_that_fails_leaves_no_reader_behind() -> None:
    """The reader is blocked on a full queue when the consumer stops: it ends with it."""

    async def endless() -> AsyncIterator[int]:
        number = 0
        while True:
            yield number
            number += 1
            await asyncio.sleep(0)

    async def scenario() -> int:
        with contextlib.suppress(RuntimeError):
            async with contextlib.aclosing(_batches(endless(), 2)) as batches:  # as the feed uses it
                async for _batch in batches:
                    await asyncio.sleep(0.01)  # the reader fills the queue meanwhile
                    raise RuntimeError("applying failed")
        return len([t for t in asyncio.all_tasks() if t.get_name() == "feed-reader" and not t.done()])

    assert asyncio.run(scenario()) == 0
