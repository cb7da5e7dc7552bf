from datetime import datetime
from typing import Protocol

from store_service.db.models import Account
from store_service.repositories.base import Repository


class AccountRepository(Repository[Account], Protocol):
    def find_next_available(self, provider: str) -> Account | None:
        """Round-robin: the least recently used usable account; stamps its last use."""
        ...

    def mark_exhausted(self, account_id: str, until: datetime | None) -> Account: ...

    def clear_expired_exhaustion(self) -> int: ...
