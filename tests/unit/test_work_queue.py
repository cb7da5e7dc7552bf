"""The per-key work queue: one worker per key, a failing key on its own back-off, nothing lost."""

from __future__ import annotations

import asyncio

from orchestrator_service.controllers.queue import WorkQueue


async def _settle(queue: WorkQueue, done: asyncio.Event) -> None:
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.wait_for(queue.drained(), 10)


def test_a_failing_key_does_not_delay_the_others() -> None:
    async def scenario() -> None:
        handled: list[str] = []
        errors: list[str] = []
        done = asyncio.Event()

        async def handle(key: str) -> None:
            if key == "broken":
                raise RuntimeError("no such path")
            handled.append(key)
            if len(handled) == 20:
                done.set()

        async def record(key: str, error: Exception) -> None:
            errors.append(f"{key}: {error}")

        queue = WorkQueue("test", handle, concurrency=2, on_error=record)
        queue.start()
        queue.add("broken")
        for index in range(20):
            queue.add(f"k{index}")
        await asyncio.wait_for(done.wait(), 10)
        assert errors == ["broken: no such path"]  # once: its back-off (1 s) has not passed yet
        assert queue.failing() == {"broken": "RuntimeError: no such path"}
        await queue.stop()

    asyncio.run(scenario())


def test_a_key_added_while_it_runs_runs_once_more() -> None:
    async def scenario() -> None:
        runs: list[int] = []
        first_started, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def handle(key: str) -> None:
            runs.append(len(runs))
            if len(runs) == 1:
                first_started.set()
                await release.wait()
            else:
                done.set()

        queue = WorkQueue("test", handle)
        queue.start()
        queue.add("k")
        await asyncio.wait_for(first_started.wait(), 10)
        queue.add("k")
        queue.add("k")  # merged with the previous request
        release.set()
        await _settle(queue, done)
        assert runs == [0, 1]
        await queue.stop()

    asyncio.run(scenario())


def test_reset_retries_a_failing_key_at_once() -> None:
    async def scenario() -> None:
        attempts: list[str] = []
        done = asyncio.Event()
        fixed = False

        async def handle(key: str) -> None:
            attempts.append(key)
            if not fixed:
                raise RuntimeError("unreachable url")
            done.set()

        queue = WorkQueue("test", handle)
        queue.start()
        queue.add("project")
        while not queue.failing():
            await asyncio.sleep(0.01)
        queue.add("project")  # the back-off holds: no immediate retry
        fixed = True
        queue.add("project", reset=True)  # the object changed: look again now
        await _settle(queue, done)
        assert attempts == ["project", "project"] and not queue.failing()
        await queue.stop()

    asyncio.run(scenario())


def test_a_key_a_handler_adds_back_with_a_delay_waits_for_that_delay() -> None:
    """The dispatcher asks to be woken when a retry pause ends, from inside its own handling: that
    request keeps its delay (it ran again at once, thousands of times a second for the whole pause)."""

    async def scenario() -> None:
        runs: list[float] = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def handle(key: str) -> None:
            runs.append(loop.time())
            if len(runs) == 1:
                queue.add(key, delay=0.3)
            else:
                done.set()

        queue = WorkQueue("test", handle)
        queue.start()
        queue.add("k")
        await _settle(queue, done)
        assert len(runs) == 2 and runs[1] - runs[0] >= 0.3
        await queue.stop()

    asyncio.run(scenario())
