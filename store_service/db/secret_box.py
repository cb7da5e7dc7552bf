"""Account secrets (`credentials`, `config_json`) encrypted at rest, with a key kept apart from the
database (`$CW_HOME/auth/secrets.key`).

Sealed on every flush that sets them, whatever the RPC that wrote them, and opened only for
`GetAccountSecrets`. A copied or leaked database file, or a backup of it, holds no usable secret; a
process that can read the auth directory (the same user) can read the key as well.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session, UOWTransaction

from store_service.db.models import Account
from store_service.domain.errors import FailedPrecondition

SEALED_PREFIX = "cw-sealed:v1:"
# Where a writer session finds the box (sessionmaker(info=...)); readers never need it.
SESSION_INFO_KEY = "cw_secret_box"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(SEALED_PREFIX)

    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str | None) -> str:
        """The plaintext; a value stored before encryption at rest comes back as it is."""
        if not stored or not self.is_sealed(stored):
            return stored or ""
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise FailedPrecondition(
                "the account's secrets were sealed with another key than this store's secrets.key",
                "SECRETS_KEY_MISMATCH",
            ) from None


def _seal_secrets(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    box: SecretBox | None = session.info.get(SESSION_INFO_KEY)
    if box is None:
        return
    for row in [*session.new, *session.dirty]:
        if isinstance(row, Account):
            for name in Account.secret_fields:
                value = getattr(row, name)
                if value and not box.is_sealed(value):
                    setattr(row, name, box.seal(value))


def install(session_class: type[Session]) -> None:
    if not event.contains(session_class, "before_flush", _seal_secrets):
        event.listen(session_class, "before_flush", _seal_secrets)


def seal_stored_secrets(session: Session, box: SecretBox) -> int:
    """Seals what was stored in plaintext before, without touching update_time or the event log.
    On SQLite, `secure_delete` zeroes the plaintext's old bytes instead of leaving them in free
    space (PostgreSQL has no such setting: the old row versions go when VACUUM reclaims them)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))
    sealed = 0
    columns = select(Account.id, Account.update_time, Account.credentials, Account.config_json)
    for row in session.execute(columns):
        stored = {name: getattr(row, name) for name in Account.secret_fields}
        plaintext = {name: value for name, value in stored.items() if value and not box.is_sealed(value)}
        if plaintext:
            sealed_values = {name: box.seal(value) for name, value in plaintext.items()}
            session.execute(
                update(Account).where(Account.id == row.id).values(update_time=row.update_time, **sealed_values)
            )
            sealed += 1
    return sealed


def key_opens_stored_secrets(session: Session, box: SecretBox) -> bool:
    """Whether `box` opens what is sealed in the database (True when nothing is): a store replica
    started with another auth directory's key would seal new secrets that the others cannot open."""
    for name in Account.secret_fields:
        column = getattr(Account, name)
        stored = session.scalar(select(column).where(column.startswith(SEALED_PREFIX)).limit(1))
        if stored is not None:
            try:
                box.open(stored)
            except FailedPrecondition:
                return False
    return True
