"""Chosen moments to die, for recovery tests: `CW_FAULTS=after-git-merge,...` makes the process
SIGKILL itself the first time it reaches each named point (a real kill -9, nothing cleaned up).

The points sit where a crash is most awkward, between a side effect and the store write that
records it; tests/e2e/test_orchestrator_v2.py restarts the orchestrator after each.
"""

from __future__ import annotations

import os
import signal

_armed = {point.strip() for point in os.environ.get("CW_FAULTS", "").split(",") if point.strip()}


def point(name: str) -> None:
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
