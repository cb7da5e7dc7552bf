from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import sessionmaker

from cw_edge.tokens import Identity
from store_service.database import create_engines
from store_service.db import migrate
from store_service.db.location import DatabaseLocation, PostgresDatabase, SqliteFile
from store_service.repositories.unit_of_work import UnitOfWorkFactory
from tests.postgres import PostgresServer
from tests.processes import end_processes_within, left_behind
from tests.support import RunningStore, store_in_thread, stubs

# Property tests check what holds, never how fast: on 2 busy cores a slow example is no failure
# (Hypothesis' default 200 ms deadline made test_validation fail under load; too_slow likewise).
settings.register_profile("cw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cw")

# Every store test runs on each database the store supports.
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite fails if a process a test started (an agent, a shim, a CLI, a server) still runs
    once every test and fixture ended: on a machine that runs the suite often they piled up. Set up
    before every other session fixture, so it looks after the last of them ended; what it finds
    is ended too, so that a failed run leaves nothing either."""
    base = tmp_path_factory.getbasetemp()
    yield
    left = left_behind(base)
    if left:
        end_processes_within(base)
        listed = "\n".join(f"  {process}" for process in left)
        pytest.fail(f"{len(left)} process(es) started by the tests outlived them:\n{listed}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session, started the first time a test needs it."""
    started = PostgresServer(tmp_path_factory.mktemp("postgres"))
    yield started
    started.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A fresh database, migrated, of its own on the session's PostgreSQL server (for store
    replicas: `tests.support.start_store_replicas`, or `store_in_thread` with a shared home)."""
    with postgres_server.fresh_database() as location:
        yield location


def _fresh_database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[DatabaseLocation]:
    if request.param == "sqlite":
        yield SqliteFile(tmp_path / "store.db")
        return
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    with postgres.fresh_database(migrated) as location:
        yield location


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseLocation]:
    """A fresh database of each kind: a SQLite file in `tmp_path` (the store migrates it as it
    starts), or a migrated database of its own on the session's PostgreSQL server."""
    yield from _fresh_database(request, tmp_path, migrated=True)


@pytest.fixture(params=DATABASES)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseLocation]:
    """A fresh database of each kind with nothing in it, not even the store's schema."""
    yield from _fresh_database(request, tmp_path, migrated=False)


@pytest.fixture
def units(database: DatabaseLocation) -> Iterator[UnitOfWorkFactory]:
    """Units of work on a freshly migrated database."""
    writer, reader = create_engines(database, readers=2)
    migrate.upgrade(writer)
    yield UnitOfWorkFactory(sessionmaker(writer, expire_on_commit=False), sessionmaker(reader, expire_on_commit=False))
    writer.dispose()
    reader.dispose()


@pytest.fixture
def store(database: DatabaseLocation, tmp_path: Path) -> Iterator[RunningStore]:
    with store_in_thread(database, tmp_path) as running:
        yield running


@pytest.fixture
def api(store: RunningStore) -> Iterator[SimpleNamespace]:
    """Every RPC, as the orchestrator (whose rights are all of them)."""
    with store.channel(Identity.ORCHESTRATOR) as channel:
        yield stubs(channel)


@pytest.fixture
def client_api(store: RunningStore) -> Iterator[SimpleNamespace]:
    """The store as a person's tool sees it: the client token."""
    with store.channel(Identity.CLIENT) as channel:
        yield stubs(channel)
