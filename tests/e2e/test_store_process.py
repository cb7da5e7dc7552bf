"""The store as its own process: killed mid-write, stopped by signal, driven by `buf curl`."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.local import Service
from cw.store.v1 import account_pb2, event_pb2, task_pb2
from cw_edge.tokens import Identity
from tests.support import auth_dir_of, process_channel, start_store_process, stubs, tokens_in

BUF = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "buf"


def _acknowledged_writes(store: Service, db_path: Path, stop: threading.Event, acknowledged: list[str]) -> None:
    """Creates tasks one after another, keeping the id of every create the store acknowledged."""
    with process_channel(store, db_path) as channel:
        api = stubs(channel)
        while not stop.is_set():
            try:
                task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="w")), timeout=5)
            except grpc.RpcError:
                return
            acknowledged.append(task.id)


def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db_path, log_path = tmp_path / "store.db", tmp_path / "store.log"
    store = start_store_process(db_path, log_path)
    acknowledged: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=_acknowledged_writes, args=(store, db_path, stop, acknowledged))
    writer.start()
    try:
        while len(acknowledged) < 300 and writer.is_alive():
            writer.join(0.01)
        store.kill()
    finally:
        stop.set()
        writer.join(30)
    assert len(acknowledged) >= 300

    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restarted = start_store_process(db_path, log_path)
    try:
        with process_channel(restarted, db_path) as channel:
            api = stubs(channel)
            for task_id in acknowledged:
                assert api.tasks.GetTask(task_pb2.GetTaskRequest(id=task_id), timeout=5).id == task_id
    finally:
        restarted.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_store_gracefully(tmp_path: Path, signum: signal.Signals) -> None:
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log")
    with grpc.insecure_channel(store.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    store.process.send_signal(signum)
    assert store.process.wait(20) == 0
    log = (tmp_path / "store.log").read_text()
    assert "shutting down" in log and "Traceback" not in log


def _buf_curl(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    header = f"Authorization: Bearer {token}"
    command = [str(BUF), "curl", "--http2-prior-knowledge", "--protocol", "grpc", "-H", header, "--reflect-header", "*"]
    command += args
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_buf_curl_works_through_reflection_alone(tmp_path: Path) -> None:
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log")
    base = f"http://{store.address}"
    token = tokens_in(auth_dir_of(tmp_path / "store.db"))[Identity.CLIENT]
    try:
        services = _buf_curl(token, "--list-services", base)
        assert services.returncode == 0, services.stderr
        listed = set(services.stdout.split())
        assert {"cw.store.v1.InitiativeService", "cw.store.v1.EventService", "grpc.health.v1.Health"} <= listed
        created = _buf_curl(
            token,
            "-d",
            '{"initiative": {"name": "From buf"}}',
            f"{base}/cw.store.v1.InitiativeService/CreateInitiative",
        )
        assert created.returncode == 0, created.stderr
        initiative = json.loads(created.stdout)
        assert initiative["branch"] == "cw/from-buf"
        fetched = _buf_curl(
            token,
            "-d",
            json.dumps({"id": initiative["id"]}),
            f"{base}/cw.store.v1.InitiativeService/GetInitiative",
        )
        assert json.loads(fetched.stdout) == initiative
    finally:
        store.kill()


def test_secrets_stay_out_of_debug_logs(tmp_path: Path) -> None:
    log_path = tmp_path / "store.log"
    store = start_store_process(tmp_path / "store.db", log_path, log_level="DEBUG")
    secret = "sk-ant-DO-NOT-LOG-4242"
    try:
        with process_channel(store, tmp_path / "store.db") as channel:
            api = stubs(channel)
            account = api.accounts.CreateAccount(
                account_pb2.CreateAccountRequest(account=account_pb2.Account(email="a@x", credentials=secret))
            )
            api.accounts.ListAccounts(account_pb2.ListAccountsRequest())
            try:
                api.accounts.CreateAccount(
                    account_pb2.CreateAccountRequest(account=account_pb2.Account(credentials=secret))
                )
            except grpc.RpcError as error:
                assert secret not in str(error.details())
            assert api.accounts.GetAccount(account_pb2.GetAccountRequest(id=account.id)).has_credentials
    finally:
        store.kill()
    log = log_path.read_text()
    assert "cw.store.v1.AccountService/CreateAccount" in log  # the per-request debug line
    assert secret not in log


def test_sigterm_ends_open_event_streams_promptly(tmp_path: Path) -> None:
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log")
    with process_channel(store, tmp_path / "store.db") as channel:
        stream = stubs(channel).events.WatchEvents(event_pb2.WatchEventsRequest(), timeout=60)
        api = stubs(channel)
        api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
        assert next(stream).type == "task:created"
        store.process.send_signal(signal.SIGTERM)
        assert store.process.wait(20) == 0
        remaining = list(stream)  # the stream ends (cleanly) rather than hanging until the deadline
    assert remaining == []


def _refused_start(*arguments: str, cwd: Path | None = None) -> list[str]:
    """Starts `python -m store_service` that must refuse; returns what it printed, line by line."""
    command = [sys.executable, "-m", "store_service", *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)
    assert finished.returncode != 0, finished.stderr
    return (finished.stdout + finished.stderr).strip().splitlines()


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        return bool(status == health_pb2.HealthCheckResponse.SERVING)


def test_a_second_store_on_the_same_database_refuses_naming_the_holder(tmp_path: Path) -> None:
    db_path, log_path = tmp_path / "store.db", tmp_path / "store.log"
    first = start_store_process(db_path, log_path)
    try:
        lines = _refused_start("--db", str(db_path), "--listen", "127.0.0.1:0")
        holder = f"pid {first.process.pid}, listening on {first.address}"
        assert lines == [f"cw-store: database {db_path} is held by another store ({holder})"]
        assert _serving(first.address)
    finally:
        first.kill()
    # The kernel dropped the dead store's lock: nothing stale keeps the next one out.
    restarted = start_store_process(db_path, log_path)
    try:
        assert _serving(restarted.address)
    finally:
        restarted.kill()


def test_a_second_store_on_a_bound_port_refuses(tmp_path: Path) -> None:
    first = start_store_process(tmp_path / "first.db", tmp_path / "first.log")
    try:
        lines = _refused_start("--db", str(tmp_path / "second.db"), "--listen", first.address)
        assert lines == [f"cw-store: cannot listen on {first.address}: address already in use"]
        assert _serving(first.address)
    finally:
        first.kill()


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("mysql://cw:hunter2@localhost/cw", "mysql:// URLs are"),
        ("postgres+foo://cw:hunter2@h/cw", "postgres+foo:// URLs are"),
    ],
)
def test_an_unsupported_database_url_is_refused_without_repeating_it(tmp_path: Path, url: str, refused: str) -> None:
    lines = _refused_start("--db", url, "--listen", "127.0.0.1:0", cwd=tmp_path)
    assert lines == [f"cw-store: --db takes the path of a SQLite file or a postgresql:// URL; {refused} not supported"]
    assert list(tmp_path.iterdir()) == []
