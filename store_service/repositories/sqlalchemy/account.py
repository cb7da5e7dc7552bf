from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select

from store_service.db.models import Account, utcnow
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


def _usable(now: datetime) -> ColumnElement[bool]:
    """Not resting (or its rest is over), and its credential not refused."""
    rested = or_(
        Account.is_exhausted.is_(False),
        (Account.exhausted_until.is_not(None)) & (Account.exhausted_until <= now),
    )
    return rested & or_(Account.unusable_reason.is_(None), Account.unusable_reason == "")


class SqlAlchemyAccountRepository(SqlAlchemyRepository[Account]):
    model = Account

    def find_next_available(self, provider: str) -> Account | None:
        now = utcnow()
        account = self.session.scalars(
            select(Account)
            .where(Account.provider == provider, _usable(now))
            .order_by(
                Account.last_used_time.is_not(None),
                Account.last_used_time,
                Account.sort_order,
                Account.create_time,
                Account.id,
            )
            .limit(1)
        ).first()
        if account is None:
            return None
        if account.is_exhausted:
            account.is_exhausted, account.exhausted_until = False, None
        account.last_used_time = now
        self.flush()
        return account

    def mark_exhausted(self, account_id: str, until: datetime | None) -> Account:
        return self.update(account_id, is_exhausted=True, exhausted_until=until)

    def clear_expired_exhaustion(self) -> int:
        now = utcnow()
        expired = (Account.is_exhausted.is_(True)) & (Account.exhausted_until <= now)
        rows = self.find_where(expired)
        for account in rows:
            account.is_exhausted, account.exhausted_until = False, None
        self.flush()
        return len(rows)
