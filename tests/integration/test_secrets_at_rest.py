"""What a copied database file or a careless umask would give away: nothing readable."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import psycopg

from cw.store.v1 import account_pb2
from cw_edge.tokens import Identity
from store_service.db.location import PostgresDatabase
from store_service.db.secret_box import SEALED_PREFIX
from tests.support import RunningStore, store_in_thread, stubs, tokens_in

SECRET = "sk-ant-AT-REST-9191"
CONFIG = '{"oauthAccount": "CONFIG-AT-REST-7373"}'


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _database_files(db_path: Path) -> list[Path]:
    return sorted(db_path.parent.glob(f"{db_path.name}*"))


def _create_account(store: RunningStore) -> str:
    with store.channel(Identity.CLIENT) as channel:
        account = stubs(channel).accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account=account_pb2.Account(email="a@x", credentials=SECRET, config_json=CONFIG)
            )
        )
    return str(account.id)


def _secrets(store: RunningStore, account_id: str) -> account_pb2.GetAccountSecretsResponse:
    with store.channel(Identity.ORCHESTRATOR) as channel:
        request = account_pb2.GetAccountSecretsRequest(id=account_id)
        return stubs(channel).accounts.GetAccountSecrets(request)


def test_no_plaintext_secret_in_the_database_or_its_wal(tmp_path: Path) -> None:
    with store_in_thread(tmp_path / "store.db") as store:
        account_id = _create_account(store)
        files = _database_files(store.db_path)
        assert any(file.name.endswith("-wal") for file in files)
        for file in files:
            content = file.read_bytes()
            assert SECRET.encode() not in content and b"CONFIG-AT-REST" not in content, file.name
        revealed = _secrets(store, account_id)
        assert revealed.credentials == SECRET and revealed.config_json == CONFIG


def test_no_plaintext_secret_in_a_postgresql_row(postgres_database: PostgresDatabase, tmp_path: Path) -> None:
    with store_in_thread(postgres_database, tmp_path) as store:
        account_id = _create_account(store)
        with psycopg.connect(postgres_database.libpq_conninfo()) as connection:
            stored = connection.execute("SELECT credentials, config_json FROM accounts").fetchall()
        assert [SECRET not in str(row) and "CONFIG-AT-REST" not in str(row) for row in stored] == [True]
        assert all(value.startswith(SEALED_PREFIX) for value in stored[0])
        assert _secrets(store, account_id).credentials == SECRET


def test_secrets_stored_in_plaintext_before_are_read_then_sealed_on_start(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    with store_in_thread(db_path) as store:
        account_id = _create_account(store)
    old_store = sqlite3.connect(db_path)  # what a store before encryption at rest wrote
    with old_store:
        old_store.execute("UPDATE accounts SET credentials = ?, config_json = NULL", ("sk-ant-LEGACY-5151",))
    old_store.close()
    assert any(b"sk-ant-LEGACY-5151" in file.read_bytes() for file in _database_files(db_path))
    with store_in_thread(db_path) as store:
        assert _secrets(store, account_id).credentials == "sk-ant-LEGACY-5151"
    for file in _database_files(db_path):
        assert b"sk-ant-LEGACY-5151" not in file.read_bytes(), file.name


def test_database_files_are_private_and_put_right_on_start(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    with store_in_thread(db_path) as store:
        _create_account(store)
        files = _database_files(db_path)
        assert {file.name for file in files} >= {"store.db", "store.db-wal", "store.db-shm"}
        assert all(_mode(file) == 0o600 for file in files), {file.name: oct(_mode(file)) for file in files}
    db_path.chmod(0o644)
    with store_in_thread(db_path):
        assert all(_mode(file) == 0o600 for file in _database_files(db_path))


def test_token_files_are_private_and_kept_across_restarts(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    with store_in_thread(tmp_path / "store.db"):
        first = tokens_in(auth)
    assert _mode(auth) == 0o700
    assert {path.name: _mode(path) for path in auth.iterdir()} == {
        "client.token": 0o600,
        "orchestrator.token": 0o600,
        "secrets.key": 0o600,
    }
    assert first[Identity.CLIENT] != first[Identity.ORCHESTRATOR] and len(first[Identity.CLIENT]) >= 32
    (auth / "client.token").chmod(0o644)
    with store_in_thread(tmp_path / "store.db"):
        assert tokens_in(auth) == first
    assert _mode(auth / "client.token") == 0o600
