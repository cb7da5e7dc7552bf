"""A work queue keyed by object id: each key is handled by at most one worker at a time, a key that
fails waits on its own back-off, and no key ever delays another.

This is the shape of a Kubernetes controller's queue: events only say "look at this object again";
the handler decides from current state what to do. Adding a key that is already waiting merges the
two requests; adding a key while it is being handled runs it once more afterwards (not before the
delay asked for), so a change that lands mid-handling is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from orchestrator_service.dispatch import Backoff

log = logging.getLogger("cw.orchestrator")

Handler = Callable[[str], Awaitable[None]]
ErrorHook = Callable[[str, Exception], Awaitable[None]]
# Awaited before each handling of a key: the orchestrator's is "the cache has caught up with our
# own writes" (cache/freshness.py), so no decision is taken from a cache behind what triggered it.
Gate = Callable[[], Awaitable[None]]


@dataclass
class _KeyState:
    due: float
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, ceiling=60.0))
    failing: bool = False
    last_error: str = ""


class WorkQueue:
    def __init__(self, name: str, handler: Handler, concurrency: int = 4, on_error: ErrorHook | None = None) -> None:
        self.name = name
        self._handler = handler
        self._concurrency = concurrency
        self._on_error = on_error
        self._waiting: dict[str, _KeyState] = {}
        self._running: set[str] = set()
        # Keys asked for again while running, with the earliest time asked for.
        self._again: dict[str, float] = {}
        self._failures: dict[str, _KeyState] = {}
        self._wakeup = asyncio.Event()
        self._workers: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.gate: Gate | None = None

    # ---- adding work -----------------------------------------------------------------------

    def add(self, key: str, delay: float = 0.0, reset: bool = False) -> None:
        """Asks for `key` to be handled after `delay` seconds. A key in back-off keeps its later
        time unless `reset` (its object changed, so the cause may be gone)."""
        if not key:
            return
        failure = self._failures.get(key)
        if reset and failure is not None:
            failure.backoff.reset()
            failure.due = 0.0
        due = time.monotonic() + delay
        if failure is not None and not reset:
            due = max(due, failure.due)
        if key in self._running:
            self._again[key] = min(due, self._again.get(key, due))
            return
        current = self._waiting.get(key)
        if current is None or due < current.due:
            self._waiting[key] = _KeyState(due)
        self._idle.clear()
        self._wakeup.set()

    def failing(self) -> dict[str, str]:
        """Keys whose last attempt failed, with the error: what `cw` shows as stuck."""
        return {key: state.last_error for key, state in self._failures.items()}

    # ---- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._schedule(), name=f"queue-{self.name}")

    async def stop(self) -> None:
        tasks = [*self._workers, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def idle(self) -> bool:
        """Nothing due or running now (in-process tests wait for every queue to be so)."""
        return self._idle.is_set()

    async def drained(self) -> None:
        """Waits until nothing is due or running (tests and benchmarks use it)."""
        await self._idle.wait()

    async def _schedule(self) -> None:
        while True:
            self._wakeup.clear()
            now = time.monotonic()
            for key in self._due_keys(now):
                self._launch(key)
            if not self._waiting and not self._running:
                self._idle.set()
            await self._sleep_until_next(now)

    def _due_keys(self, now: float) -> list[str]:
        free = self._concurrency - len(self._running)
        due = sorted((state.due, key) for key, state in self._waiting.items() if state.due <= now)
        return [key for _, key in due[: max(free, 0)]]

    async def _sleep_until_next(self, now: float) -> None:
        pending = [state.due for key, state in self._waiting.items() if key not in self._running]
        timeout = max(min(pending) - now, 0.0) if pending else None
        if pending and len(self._running) >= self._concurrency:
            timeout = None  # a finishing worker wakes us
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _launch(self, key: str) -> None:
        del self._waiting[key]
        self._running.add(key)
        worker = asyncio.create_task(self._work(key), name=f"{self.name}:{key}")
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _work(self, key: str) -> None:
        failed = False
        try:
            if self.gate is not None:
                await self.gate()
            await self._handler(key)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failed = True
            await self._failed(key, error)
        else:
            self._failures.pop(key, None)
        finally:
            self._running.discard(key)
            again = self._again.pop(key, None)
            if failed:
                self.add(key)  # at its back-off time, or later
            elif again is not None:
                self.add(key, delay=max(again - time.monotonic(), 0.0))  # when it was asked for
            self._wakeup.set()

    async def _failed(self, key: str, error: Exception) -> None:
        state = self._failures.setdefault(key, _KeyState(0.0))
        delay = state.backoff.next_delay()
        state.due = time.monotonic() + delay
        message = f"{type(error).__name__}: {error}"
        if message != state.last_error:
            log.warning("%s %s failed (retrying in %.0fs): %s", self.name, key, delay, message)
        state.last_error = message
        if self._on_error is not None:
            try:
                await self._on_error(key, error)
            except Exception:
                log.exception("%s: recording the error of %s failed", self.name, key)
