"""`make demo` as a test: the whole walkthrough, from a temporary CW_HOME, within a minute, reading
like a terminal session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.processes import end_processes_within


def test_demo_passes(tmp_path: Path) -> None:
    env = {**os.environ, "CW_DEMO_HOME": str(tmp_path / "home"), "CW_HOME": str(tmp_path / "unused")}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "clients.demo"], capture_output=True, text=True, env=env, timeout=60, check=False
        )
    finally:
        # A demo killed by the timeout cannot stop its services and agents itself.
        end_processes_within(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo passed" in result.stdout
    assert "ok: the crashed agent's task was retried once, then completed" in result.stdout
    assert "[event]" in result.stdout and "task:retried" in result.stdout
    lines = result.stdout.splitlines()
    # A session a person could replay: commands quoted as a shell wants them...
    assert "$ cw --json initiative create 'Greeting service' --project greeter" in lines
    # ...each followed by its own output, the event stream only in its own marked blocks...
    for index, line in enumerate(lines):
        if line.startswith("[event]"):
            assert lines[index - 1].startswith(("[event]", "-- meanwhile, in another terminal: $ cw events")), index
    # ...JSON abridged by whole fields, and task descriptions as a person writes them.
    # (An agent's own output lines, shown as `cw task show` cuts them, are not previews.)
    previews = [line for line in lines if line.startswith(("{", "[{")) and not line.startswith('{"type": ')]
    assert previews and all(line.endswith(("}", "]")) for line in previews)
    assert "script:" not in result.stdout
