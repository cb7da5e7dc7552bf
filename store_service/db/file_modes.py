"""The database and its WAL and shared-memory files are readable by their owner only.

SQLite gives the -wal and -shm files the mode of the database file, so creating that file 0600
before SQLite first opens it is enough for new databases; files an older store made are put right.
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private(path: Path, mode: int = DATABASE_FILE_MODE) -> None:
    """Takes group and other permissions away from an existing file or directory."""
    if path.exists() and path.stat().st_mode & 0o777 != mode:
        path.chmod(mode)


def make_database_files_private(path: Path) -> None:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DATABASE_FILE_MODE))
    for file in [path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)]:
        make_private(file)
