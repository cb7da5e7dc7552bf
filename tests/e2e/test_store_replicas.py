"""Store processes on one PostgreSQL database: replicas sharing an auth directory serve the same
data with the same tokens and outlive each other; a replica with another secrets key, or a database
that cannot be reached, is refused at start in one line that repeats no password."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from clients.local import Service
from cw.store.v1 import account_pb2, task_pb2
from cw_edge.tokens import Identity
from store_service.db.location import PostgresDatabase
from tests.postgres import PostgresServer
from tests.support import (
    authorized_channel,
    db_argument,
    start_store_process,
    start_store_replicas,
    stubs,
    tokens_in,
)


def _refused_start(*arguments: str) -> list[str]:
    command = [sys.executable, "-m", "store_service", "--listen", "127.0.0.1:0", *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode != 0, finished.stderr
    return (finished.stdout + finished.stderr).strip().splitlines()


def test_replicas_sharing_an_auth_directory_serve_one_database_and_outlive_each_other(
    postgres_database: PostgresDatabase, tmp_path: Path
) -> None:
    replicas = start_store_replicas(postgres_database, 2, tmp_path)
    token = tokens_in(tmp_path / "auth")[Identity.CLIENT]
    try:
        with authorized_channel(replicas[0].address, token) as channel:
            created = stubs(channel).tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t")))
            secret = account_pb2.Account(email="a@x", provider="claude", credentials='{"token": "s3cret"}')
            stubs(channel).accounts.CreateAccount(account_pb2.CreateAccountRequest(account=secret))
        replicas[0].kill()
        with authorized_channel(replicas[1].address, token) as channel:
            found = stubs(channel).tasks.GetTask(task_pb2.GetTaskRequest(id=created.id), timeout=10)
            assert found.name == "t"
    finally:
        for replica in replicas:
            replica.kill()

    # A replica with an auth directory of its own would seal secrets the others cannot open.
    lines = _refused_start("--db", db_argument(postgres_database), "--auth-dir", str(tmp_path / "other-auth"))
    assert lines[-1] == (
        f"cw-store: {tmp_path / 'other-auth' / 'secrets.key'} is not the key the database's account secrets were "
        "sealed with: every store on one database needs the same auth directory's files"
    )
    assert not any("Traceback" in line for line in lines)


def test_replicas_started_together_on_an_empty_database_migrate_it_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    def start_one(index: int) -> Service:
        return start_store_process(database, tmp_path / f"store-{index}.log", auth_dir=tmp_path / "auth")

    with postgres_server.fresh_database(migrated=False) as database, ThreadPoolExecutor(3) as pool:
        starts = [pool.submit(start_one, index) for index in range(3)]
        wait(starts)
        try:
            token = tokens_in(tmp_path / "auth")[Identity.CLIENT]
            for started in starts:
                with authorized_channel(started.result().address, token) as channel:
                    listed = stubs(channel).tasks.ListTasks(task_pb2.ListTasksRequest(), timeout=10)
                    assert list(listed.tasks) == []
        finally:
            for started in starts:
                if started.exception() is None:
                    started.result().kill()


def test_a_database_that_cannot_be_reached_is_refused_in_one_line_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://cw:hunter2@127.0.0.1:1/cw"
    lines = _refused_start("--db", url, "--auth-dir", str(tmp_path / "auth"))
    assert len(lines) == 1 and "hunter2" not in lines[0]
    assert lines[0].startswith("cw-store: cannot open the database postgresql+psycopg://cw:***@127.0.0.1:1/cw: ")
