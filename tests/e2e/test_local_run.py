"""`make run`'s launcher: both services up on $CW_HOME, and Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.cluster import SCRIPTED, wait_for


def _launch(home: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`python -m clients.local` on `home`, once it says it runs; with what it printed until then."""
    ports = {"CW_STORE": "127.0.0.1:0", "CW_ORCHESTRATOR": "127.0.0.1:0", "CW_WEB": "127.0.0.1:0"}
    env = {**os.environ, "CW_HOME": str(home), **ports}
    # A scripted default provider: as root (CI), claude as the default would be refused.
    scripted = ["--provider", f"scripted={SCRIPTED}", "--default-provider", "scripted"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "clients.local", *scripted],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []

    def started() -> bool:
        assert launcher.stdout is not None
        lines.append(launcher.stdout.readline())
        return "cw is running" in lines[-1]

    wait_for("the launcher to report", started)
    return launcher, lines


def test_run_starts_both_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    launcher, lines = _launch(tmp_path)
    assert launcher.stdout is not None
    assert "($CW_STORE)" in lines[0] and "($CW_ORCHESTRATOR)" in lines[0]
    addresses = re.findall(r"listening on ([\d.]+:\d+)", "".join(lines))
    assert len(addresses) == 2 and (tmp_path / "store.db").exists()
    login = re.search(r"log in: (http://[\d.:]+/login\?token=\S+)", "".join(lines))
    assert login, lines
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the session cookie
    with browser.open(login.group(1), timeout=10) as page:  # the web server's one-time link
        assert page.status == 200 and b"Initiatives" in page.read()
    for address in addresses:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(30) == 0
    assert "cw stopped" in launcher.stdout.read()
    assert "Traceback" not in (tmp_path / "web.log").read_text()
    for log in ("store.log", "orchestrator.log"):
        text = (tmp_path / log).read_text()
        assert "shutting down" in text and "Traceback" not in text


def test_run_says_which_service_died_and_fails(tmp_path: Path) -> None:
    launcher, _ = _launch(tmp_path)
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    orchestrator = next(
        int(pid) for pid in children if b"orchestrator_service" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    os.kill(orchestrator, signal.SIGKILL)
    assert launcher.wait(30) == 1
    assert launcher.stdout is not None
    said = launcher.stdout.read()
    assert f"cw: the orchestrator was killed by SIGKILL; its log: {tmp_path / 'orchestrator.log'}" in said
    assert "cw stopped because a service died" in said
    assert "shutting down" in (tmp_path / "store.log").read_text()  # the store was stopped cleanly


def _run_refused(home: Path, *arguments: str, path: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CW_HOME": str(home), "CW_STORE": "127.0.0.1:0", "CW_ORCHESTRATOR": "127.0.0.1:0"}
    if path:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "clients.local", *arguments],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_service_that_refuses_to_start_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """What a new user saw from `make run` as root: a traceback with the useful line buried in it.
    Here the refusal every user can meet (an orchestrator flag it rejects); as root, the next test."""
    ended = _run_refused(tmp_path, "--max-agents", "many")
    assert ended.returncode == 2
    assert "Traceback" not in ended.stderr + ended.stdout
    said = ended.stderr.strip().splitlines()
    assert len(said) == 1 and "--max-agents" in said[0] and "invalid int value" in said[0]
    assert str(tmp_path / "orchestrator.log") in said[0]


def test_make_run_where_agents_cannot_be_sandboxed_says_so_in_one_line(tmp_path: Path) -> None:
    """What a new user met as root before cw had its sandbox, and anyone meets without bubblewrap
    now: the refusal in one line naming both ways out, no traceback."""
    ended = _run_refused(tmp_path, path=str(Path(sys.executable).parent))  # no bwrap on this PATH
    assert ended.returncode == 2
    assert "Traceback" not in ended.stderr + ended.stdout
    said = ended.stderr.strip().splitlines()
    assert len(said) == 1 and "install bubblewrap" in said[0] and "--agents-in-sandbox" in said[0], said
