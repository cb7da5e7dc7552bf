"""The connection a write's statements run on (repositories/unit_of_work.py begins its transaction)."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

# session.info's key of the connection a write's session is bound to.
CONNECTION_KEY = "cw.connection"


def connection_of(session: Session) -> Connection:
    """The connection of the session's transaction: for a write, the one its unit of work began,
    without beginning the session's own transaction machinery; otherwise the session's."""
    connection: Connection | None = session.info.get(CONNECTION_KEY)
    return connection if connection is not None else session.connection()
