from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from store_service.db.models import Account, Agent, utcnow
from store_service.domain.progress import LIVE_AGENT
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository
from store_service.rules import providers


def _usable(now: datetime) -> ColumnElement[bool]:
    """Not resting (or its rest is over), and its credential not refused."""
    rested = or_(
        Account.is_exhausted.is_(False),
        (Account.exhausted_until.is_not(None)) & (Account.exhausted_until <= now),
    )
    return rested & or_(Account.unusable_reason.is_(None), Account.unusable_reason == "")


def _below_cap() -> ColumnElement[bool]:
    """No cap, or fewer live agents (RUNNING or WAITING_FOR_INPUT) using it than its cap. Read in
    the write's transaction, which holds the store's write lock: no other write counts meanwhile."""
    live = (
        select(func.count(Agent.id))
        .where(Agent.account_id == Account.id, Agent.status.in_(LIVE_AGENT))
        .correlate(Account)
        .scalar_subquery()
    )
    return or_(Account.max_concurrent_agents == 0, live < Account.max_concurrent_agents)


class SqlAlchemyAccountRepository(SqlAlchemyRepository[Account]):
    model = Account

    def create(self, **values: Any) -> Account:
        providers.check("account", values)
        return super().create(**values)

    def update(self, row_id: str, **values: Any) -> Account:
        providers.check("account", values)
        return super().update(row_id, **values)

    def find_next_available(self, provider: str) -> Account | None:
        now = utcnow()
        account = self.session.scalars(
            select(Account)
            .where(Account.provider == provider, _usable(now), _below_cap())
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
