"""A real bubblewrap sandbox as agents/sandbox.py builds it: its user, its processes, its network."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator_service.agents import pids_cgroup, process, sandbox, supervisor
from orchestrator_service.agents.sandbox import AgentPath, Network, RunMounts, SandboxPolicy
from orchestrator_service.agents.shim import EXIT_FILE
from orchestrator_service.agents.supervisor import AgentFiles

pytestmark = pytest.mark.skipif(sandbox.cannot_sandbox() is not None, reason="bubblewrap cannot run here")

PROBE = """
import json, os, socket, sys
port, outsider = int(sys.argv[1]), int(sys.argv[2])
seen = {"uid": os.geteuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
try:
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    seen["loopback"] = "reached"
except OSError as error:
    seen["loopback"] = type(error).__name__
try:
    os.kill(outsider, 9)
    seen["kill"] = "killed"
except OSError as error:
    seen["kill"] = type(error).__name__
print(json.dumps(seen))
"""


def _run(tmp_path: Path, network: Network, port: int, outsider: int) -> dict[str, Any]:
    work, config = tmp_path / "work", tmp_path / "config"
    for directory in (work, config):
        directory.mkdir(exist_ok=True)
    passwd, group = sandbox.account_files(config)
    (tmp_path / "passwd").write_text(passwd)
    (tmp_path / "group").write_text(group)
    run = RunMounts((work, config), (), config, work, tmp_path / "passwd", tmp_path / "group")
    policy = SandboxPolicy(network=network, paths=(AgentPath(Path(sys.base_prefix)),))
    python = os.path.realpath(sys.executable)
    command = sandbox.bwrap_command(
        policy, run, [python, "-I", "-c", PROBE, str(port), str(outsider)], sandbox.system_mounts()
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(done.stdout))


def test_an_ordinary_user_that_sees_and_signals_only_its_own_processes(tmp_path: Path) -> None:
    outsider = subprocess.Popen(["sleep", "60"])
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        seen = _run(tmp_path, Network.ON, listener.getsockname()[1], outsider.pid)
        assert seen["uid"] == 1000
        assert outsider.pid not in seen["pids"] and len(seen["pids"]) <= 3  # bwrap's init and the probe
        assert seen["kill"] == "ProcessLookupError" and outsider.poll() is None
        assert seen["loopback"] == "reached"  # the network stays on: the model's API needs it
    finally:
        listener.close()
        outsider.kill()
        outsider.wait(10)


def test_network_off_reaches_not_even_the_machines_loopback(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        seen = _run(tmp_path, Network.OFF, listener.getsockname()[1], os.getpid())
        assert seen["loopback"] == "ConnectionRefusedError"
    finally:
        listener.close()


def test_a_stop_reaches_the_sandboxed_agent_which_ends_as_it_chooses(tmp_path: Path) -> None:
    """SIGTERM to the shim's process group, as StopAgent sends it: bwrap outside does not die of it
    (it would SIGKILL the agent), the agent gets it and runs its handler to the end."""
    agent = ["sh", "-c", 'trap "echo stopping; sleep 0.5; echo ended; exit 0" TERM; echo ready; sleep 100 & wait']
    files, shim = _shim_of(tmp_path, agent)
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in files.output.read_bytes():
            assert time.monotonic() < deadline and shim.poll() is None, files.output.read_bytes()
            time.sleep(0.05)
        process.signal_group(shim.pid, signal.SIGTERM)
        shim.wait(30)
    finally:
        process.signal_group(shim.pid, signal.SIGKILL)
    assert files.output.read_bytes().split() == [b"ready", b"stopping", b"ended"]
    assert json.loads((files.control / EXIT_FILE).read_text())["exit_code"] == 0


def test_an_agent_killed_by_a_signal_in_its_sandbox_is_recorded_as_killed(tmp_path: Path) -> None:
    files, shim = _shim_of(tmp_path, ["sh", "-c", "kill -9 $$"])
    shim.wait(30)
    assert json.loads((files.control / EXIT_FILE).read_text()) == {"exit_code": None, "signal": 9}


def _shim_of(
    tmp_path: Path, agent: list[str], max_processes: int | None = None
) -> tuple[AgentFiles, subprocess.Popen[bytes]]:
    """`agent` started as the orchestrator starts one: under the shim, in its sandbox."""
    files = AgentFiles(tmp_path / "agents" / "a")
    supervisor.make_private_dirs(files)
    files.config_dir.mkdir()
    passwd, group = sandbox.account_files(files.config_dir)
    (files.control / "passwd").write_text(passwd)
    (files.control / "group").write_text(group)
    run = RunMounts(
        (files.workdir, files.outbox),
        (),
        files.config_dir,
        files.workdir,
        files.control / "passwd",
        files.control / "group",
    )
    command = sandbox.bwrap_command(SandboxPolicy(), run, agent, sandbox.system_mounts())
    return files, supervisor.spawn(files, command, {}, max_processes=max_processes)


@pytest.mark.skipif(not os.access(pids_cgroup.PIDS_V1, os.W_OK), reason="no cgroup v1 pids hierarchy to write")
def test_max_processes_holds_for_every_process_of_the_run_and_its_group_goes(tmp_path: Path) -> None:
    # The shim, bwrap outside and its init inside count too: 8 leaves the agent room for 5.
    agent = ["sh", "-c", "n=0; for i in $(seq 20); do sleep 30 2>/dev/null & n=$((n+1)); done; echo started; kill 0"]
    files, shim = _shim_of(tmp_path, agent, max_processes=8)
    shim.wait(60)
    output = files.output.read_text()
    assert "fork" in output.lower() or "resource temporarily unavailable" in output.lower(), output
    assert not list(pids_cgroup.PIDS_V1.glob(f"**/{pids_cgroup.GROUP_PARENT}/{files.control.name}"))
