from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import sessionmaker

from cw_edge.tokens import Identity
from store_service.db import migrate
from store_service.db.engine import create_reader_engine, create_writer_engine
from store_service.db.unit_of_work import UnitOfWorkFactory
from tests.support import RunningStore, store_in_thread, stubs


@pytest.fixture
def units(tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    """Units of work on a freshly migrated SQLite file."""
    path = tmp_path / "store.db"
    writer, reader = create_writer_engine(path), create_reader_engine(path, 2)
    migrate.upgrade(writer)
    yield UnitOfWorkFactory(sessionmaker(writer, expire_on_commit=False), sessionmaker(reader, expire_on_commit=False))
    writer.dispose()
    reader.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunningStore]:
    with store_in_thread(tmp_path / "store.db") as running:
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
