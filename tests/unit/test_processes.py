"""The check that the suite leaves no process behind (tests/processes.py) finds what it must."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import end_processes_within, left_behind, processes_within


def test_a_process_working_in_the_test_directory_is_found_and_ended(tmp_path: Path) -> None:
    inside = tmp_path / "agent"
    inside.mkdir()
    # Its own session, as agents run: not a child the test would reap by itself.
    sleeper = subprocess.Popen(["sleep", "600"], cwd=inside, start_new_session=True)
    named = subprocess.Popen(  # named on its command line, as a store's --db is
        [sys.executable, "-c", "import time; time.sleep(600)", str(tmp_path / "x")], start_new_session=True
    )
    neighbour = tmp_path.with_name(tmp_path.name + "1")  # a sibling whose name starts the same
    neighbour.mkdir(exist_ok=True)
    elsewhere = subprocess.Popen(["sleep", "602"], cwd=neighbour, start_new_session=True)
    try:
        assert {found.pid for found in processes_within(tmp_path)} == {sleeper.pid, named.pid}
        assert {found.pid for found in left_behind(tmp_path, settle_seconds=0.2)} == {sleeper.pid, named.pid}
        assert {found.pid for found in end_processes_within(tmp_path)} == {sleeper.pid, named.pid}
        assert sleeper.wait(10) == -9 and named.wait(10) == -9
        assert processes_within(tmp_path) == [] and elsewhere.poll() is None
    finally:
        for process in (sleeper, named, elsewhere):
            process.kill()
            process.wait(10)
