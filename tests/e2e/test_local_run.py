"""`make run`'s launcher: both services up on $CW_HOME, and Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.cluster import SCRIPTED, wait_for


def test_run_starts_both_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    env = {**os.environ, "CW_HOME": str(tmp_path), "CW_STORE": "127.0.0.1:0", "CW_ORCHESTRATOR": "127.0.0.1:0"}
    # A scripted default provider: as root (CI), claude as the default would be refused.
    scripted = ["--provider", f"scripted={SCRIPTED}", "--default-provider", "scripted"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "clients.local", *scripted],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert launcher.stdout is not None
    lines: list[str] = []

    def started() -> bool:
        assert launcher.stdout is not None
        lines.append(launcher.stdout.readline())
        return "cw is running" in lines[-1]

    wait_for("the launcher to report", started)
    addresses = re.findall(r"listening on ([\d.]+:\d+)", "".join(lines))
    assert len(addresses) == 2 and (tmp_path / "store.db").exists()
    for address in addresses:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(30) == 0
    assert "cw stopped" in launcher.stdout.read()
    for log in ("store.log", "orchestrator.log"):
        text = (tmp_path / log).read_text()
        assert "shutting down" in text and "Traceback" not in text
