"""Which database errors are a full disk or a damaged database (store_service/db/health.py), on
PostgreSQL's side: the SQLite side is tested on a real full disk and a real damaged file
(tests/integration/test_disk_failures.py)."""

from __future__ import annotations

import psycopg.errors
from sqlalchemy import exc

from store_service.db import health


def _wrapped(error: Exception) -> exc.DBAPIError:
    """As SQLAlchemy raises a driver's error: the driver's in `.orig`."""
    return exc.OperationalError("INSERT ...", {}, error)


def test_postgres_disk_full_and_corruption_are_told_apart_from_other_errors() -> None:
    assert health.failure_of(_wrapped(psycopg.errors.DiskFull("no space"))) == health.Failure.DISK_FULL
    assert health.failure_of(_wrapped(psycopg.errors.DataCorrupted("bad page"))) == health.Failure.DAMAGED
    assert health.failure_of(_wrapped(psycopg.errors.IndexCorrupted("bad index"))) == health.Failure.DAMAGED
    assert health.failure_of(_wrapped(psycopg.errors.UniqueViolation("duplicate"))) is None
    assert health.failure_of(ValueError("a bug")) is None
