"""The shim and the supervisor with real processes: identity, exit status, liveness, groups."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from orchestrator_service.agents import process, shim, supervisor
from orchestrator_service.agents.supervisor import AgentFiles, Liveness
from tests.e2e.cluster import wait_for


def _files(tmp_path: Path) -> AgentFiles:
    files = AgentFiles(tmp_path / "agent")
    files.workdir.mkdir(parents=True)
    return files


def test_exit_status_is_recorded_and_read_back(tmp_path: Path) -> None:
    files = _files(tmp_path)
    child = supervisor.spawn(files, [sys.executable, "-c", "print('hi'); raise SystemExit(7)"], dict(os.environ))
    child.wait(30)
    observed = supervisor.observe(files, time.time())
    assert (observed.liveness, observed.exit_code) == (Liveness.EXITED, 7)
    data, offset = supervisor.read_new_output(files, 0, final=True)
    assert data == b"hi\n" and offset == 3


def test_death_by_signal_and_vanished_shim(tmp_path: Path) -> None:
    files = _files(tmp_path)
    child = supervisor.spawn(files, [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    wait_for("the shim's identity", lambda: supervisor.live_process_group(files))
    assert supervisor.observe(files, time.time()).liveness == Liveness.RUNNING
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(30)
    observed = supervisor.observe(files, time.time())
    assert observed.liveness == Liveness.VANISHED and supervisor.live_process_group(files) is None


def test_shim_records_a_provider_killed_by_a_signal(tmp_path: Path) -> None:
    files = _files(tmp_path)
    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    supervisor.spawn(files, command, dict(os.environ)).wait(30)
    observed = supervisor.observe(files, time.time())
    assert (observed.liveness, observed.exit_code) == (Liveness.EXITED, None)


def test_missing_identity_is_running_only_within_the_grace_period(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert supervisor.observe(files, time.time()).liveness == Liveness.RUNNING
    assert supervisor.observe(files, time.time() - 3600).liveness == Liveness.VANISHED


def test_a_reused_pid_is_not_mistaken_for_the_agent() -> None:
    me = os.getpid()
    started = process.start_time(me)
    assert started is not None
    assert process.is_alive(me, started)
    assert not process.is_alive(me, started + 1)


def test_resume_archives_the_previous_session(tmp_path: Path) -> None:
    files = _files(tmp_path)
    supervisor.spawn(files, [sys.executable, "-c", "pass"], dict(os.environ)).wait(30)
    files.signal.write_text("{}")
    assert files.session_number() == 1
    files.archive_session()
    assert files.session_number() == 2 and files.read_signal() is None
    assert supervisor.observe(files, time.time() - 3600).liveness == Liveness.VANISHED


# The agent starts a helper process in its group, then works: both must end when fenced.
_WORKER = (
    "import subprocess, sys, time; helper = subprocess.Popen(['sleep', '60']);"
    "open('pids', 'w').write(f'{helper.pid}'); time.sleep(float(sys.argv[1]))"
)


def _fenced_files(tmp_path: Path) -> AgentFiles:
    """An agent in a workspace of its own: the fence file is the workspace's."""
    files = AgentFiles.of(tmp_path / "workspace", "a1")
    files.workdir.mkdir(parents=True)
    return files


def test_a_shim_past_its_orchestrators_deadline_ends_its_agent_and_itself(tmp_path: Path) -> None:
    files = _fenced_files(tmp_path)
    shim.write_fence(files.fence, shim.boottime() + 1.0, 0.02)
    child = supervisor.spawn(files, [sys.executable, "-c", _WORKER, "60"], dict(os.environ))
    helper = int(wait_for("the agent's helper", lambda: _read(files.workdir / "pids")))
    assert supervisor.live_process_group(files) is not None
    child.wait(30)
    assert shim.boottime() >= shim.read_fence(files.fence).deadline  # type: ignore[operator]
    observed = supervisor.observe(files, time.time())
    assert (observed.liveness, observed.exit_code, observed.fenced) == (Liveness.EXITED, None, True)
    assert child.returncode == -signal.SIGKILL
    wait_for("the helper to be gone", lambda: process.start_time(helper) is None, 10)


def test_a_shim_started_past_its_orchestrators_deadline_starts_no_agent(tmp_path: Path) -> None:
    """The orchestrator was stopped while it started the shim: the shim itself ends normally."""
    files = _fenced_files(tmp_path)
    shim.write_fence(files.fence, shim.boottime() - 1.0, 0.02)
    child = supervisor.spawn(files, [sys.executable, "-c", "open('started', 'w')"], dict(os.environ))
    assert child.wait(30) == 0
    assert supervisor.observe(files, time.time()).fenced and not (files.workdir / "started").exists()


@pytest.mark.parametrize("deadline", [None, 3600.0])
def test_a_shim_without_a_deadline_due_lets_its_agent_finish(tmp_path: Path, deadline: float | None) -> None:
    """A lone orchestrator writes no deadline: its agents outlive it. The agent works for a second,
    some fifty reads of the fence."""
    files = _fenced_files(tmp_path)
    shim.write_fence(files.fence, None if deadline is None else shim.boottime() + deadline, 0.02)
    child = supervisor.spawn(files, [sys.executable, "-c", _WORKER, "1"], dict(os.environ))
    child.wait(30)
    observed = supervisor.observe(files, time.time())
    assert (observed.liveness, observed.exit_code, observed.fenced) == (Liveness.EXITED, 0, False)
    helper = int(wait_for("the agent's helper", lambda: _read(files.workdir / "pids")))
    os.kill(helper, signal.SIGKILL)  # the agent's helper outlives the agent, not the test


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except FileNotFoundError:
        return None
