"""The shim's fence decision: a deadline its orchestrator wrote, and nothing when there is none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_the_shims_own_json_is_json_dumps_and_any_other_fence_is_read_by_json(tmp_path: Path) -> None:
    """The shim writes and reads its files without `json` (it starts faster): the same text
    `json.dumps` writes, and a fence written any other way still read as `json` reads it."""
    shapes: list[dict[str, object]] = [
        {"pid": 12, "start_time": 345, "output_offset": None},
        {"exit_code": None, "signal": 9, "fenced": True},
        {"exit_code": 125, "signal": 0, "abandoned": False},
        {"deadline": 1234.5678901, "poll": 0.02},
        {"deadline": None, "poll": 0.5},
        {"deadline": float("inf"), "poll": 1e-7},
        {"name": "text"},
        {"not an identifier": 1},
    ]
    for data in shapes:
        assert shim.dumps(data) == json.dumps(data)
    path = tmp_path / shim.FENCE_FILE
    for text in ('{"deadline":7.5,"poll":0.1}', '{ "poll": 0.1, "deadline": 7.5 }', '{"deadline": 7.5, "poll": 0.1}\n'):
        path.write_text(text)
        assert shim.read_fence(path) == Fence(7.5, 0.1), text
    path.write_text('{"deadline": 7.5, "poll": 0.1, "deadline": null}')
    assert shim.read_fence(path) == Fence(None, 0.1)  # the last one counts, as json reads it


def test_the_agent_s_return_code_reads_as_subprocess_gives_it(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt"
    prompt.write_text("on standard input\n")
    with prompt.open("rb") as stdin:
        child = shim.Child.start(["sh", "-c", f"cat > {tmp_path / 'got'}; exit 3"], stdin)
    assert shim.wait(child, None) == 3 and (tmp_path / "got").read_text() == "on standard input\n"
    with prompt.open("rb") as stdin:
        child = shim.Child.start(["sleep", "30"], stdin)
    child.kill()
    assert shim.wait(child, None) == -9
    child.kill()  # reaped: never signalled again (its pid may be another process's)
    with prompt.open("rb") as stdin, pytest.raises(FileNotFoundError):
        shim.Child.start(["/nonexistent/program"], stdin)
