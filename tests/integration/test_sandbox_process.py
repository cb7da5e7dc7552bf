"""A real bubblewrap sandbox as agents/sandbox.py builds it: its user, its processes, its network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator_service.agents import sandbox
from orchestrator_service.agents.sandbox import AgentPath, Network, RunMounts, SandboxPolicy

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
