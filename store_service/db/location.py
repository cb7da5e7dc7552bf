"""Where the store's database lives: a SQLite file (the embedded default, one store per file) or a
PostgreSQL database (any number of store replicas on it).

A PostgreSQL URL may hold a password: it is never logged or repeated whole; `describe()` is what
logs and messages show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL

# The driver the store speaks PostgreSQL with (psycopg 3), whatever the URL's scheme said.
POSTGRES_DRIVER = "postgresql+psycopg"


@dataclass(frozen=True)
class SqliteFile:
    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class PostgresDatabase:
    url: URL

    def describe(self) -> str:
        """The URL without its password."""
        return self.url.render_as_string(hide_password=True)

    def libpq_conninfo(self) -> str:
        """The URL as libpq takes it (for a connection of psycopg's own, outside SQLAlchemy)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)


DatabaseLocation = SqliteFile | PostgresDatabase


def located(where: Path | DatabaseLocation) -> DatabaseLocation:
    """A bare path is a SQLite file."""
    return SqliteFile(where) if isinstance(where, Path) else where
