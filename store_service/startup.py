"""What the store refuses at start beyond its edge (cw_edge: the address, the database lock): a
database URL, since only SQLite files are supported for now."""

from __future__ import annotations

from pathlib import Path


class StartupRefused(Exception):
    """The store cannot start; the message is one line for the person who started it."""


def database_path(value: str) -> Path:
    """`--db` takes a file path; a URL would otherwise become a file named `postgresql:`. The URL
    itself is not repeated: it may hold a password."""
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise StartupRefused(f"--db takes the path of a SQLite file; {scheme}:// URLs are not supported yet")
    return Path(value)
