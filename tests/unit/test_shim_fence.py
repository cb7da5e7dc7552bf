"""The shim's fence decision: a deadline its orchestrator wrote, and nothing when there is none."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator_service.agents import shim
from orchestrator_service.agents.shim import Fence


def test_a_shim_is_fenced_only_past_a_deadline() -> None:
    assert shim.is_fenced(Fence(deadline=10.0), 10.0)
    assert shim.is_fenced(Fence(deadline=10.0), 11.0)
    assert not shim.is_fenced(Fence(deadline=10.0), 9.9)
    assert not shim.is_fenced(Fence(deadline=None), 1e12)


def test_the_fence_file_read_back(tmp_path: Path) -> None:
    path = tmp_path / shim.FENCE_FILE
    shim.write_fence(path, 12.5, 0.3)
    assert shim.read_fence(path) == Fence(12.5, 0.3)
    shim.write_fence(path, None, 0.3)
    assert shim.read_fence(path) == Fence(None, 0.3)
    path.write_text(json.dumps({"deadline": 1.0, "poll": 60}))
    assert shim.read_fence(path).poll == shim.POLL_SECONDS  # never read less often than that


def test_no_readable_fence_sets_no_deadline(tmp_path: Path) -> None:
    """An orchestrator that writes none (an older one), or a file caught half-written."""
    assert shim.read_fence(None) == Fence()
    assert shim.read_fence(tmp_path / "missing.json") == Fence()
    for text in ("{", "[]", '{"deadline": "soon"}'):
        (tmp_path / "fence.json").write_text(text)
        assert shim.read_fence(tmp_path / "fence.json").deadline is None
