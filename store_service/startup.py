"""What the store refuses at start beyond its edge (cw_edge: the address, the database lock): a
`--db` that is neither a SQLite file nor a PostgreSQL URL."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import exc, make_url

from store_service.db.location import POSTGRES_DRIVER, DatabaseLocation, PostgresDatabase, SqliteFile

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", POSTGRES_DRIVER})
# What may be repeated of a refused URL: its scheme, when it looks like one (a password cannot hide
# in it then).
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,30}")


class StartupRefused(Exception):
    """The store cannot start; the message is one line for the person who started it."""


def database_location(value: str) -> DatabaseLocation:
    """`--db`: a file path, or a `postgresql://` URL (a URL would otherwise become a file named
    `postgresql:`). Nothing of a URL but its scheme is repeated: it may hold a password."""
    if "://" not in value:
        return SqliteFile(Path(value))
    scheme = value.split("://", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        shown = f"{scheme}:// URLs are" if _SCHEME.fullmatch(scheme) else "that URL is"
        raise StartupRefused(f"--db takes the path of a SQLite file or a postgresql:// URL; {shown} not supported")
    try:
        url = make_url(value)
    except (exc.ArgumentError, ValueError):
        raise StartupRefused(
            "--db: that postgresql:// URL cannot be read (user, password, host, port, database)"
        ) from None
    return PostgresDatabase(url.set(drivername=POSTGRES_DRIVER))
