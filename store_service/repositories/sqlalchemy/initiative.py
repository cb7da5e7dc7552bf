from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from store_service.db.models import Initiative
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60].rstrip("-") or "initiative"


class SqlAlchemyInitiativeRepository(SqlAlchemyRepository[Initiative]):
    model = Initiative

    def create(self, **values: Any) -> Initiative:
        if not values.get("branch"):
            values["branch"] = self._unique_branch(f"cw/{slugify(values.get('name') or '')}")
        return super().create(**values)

    def find_by_status(self, status: str) -> list[Initiative]:
        return self.find_where(Initiative.status == status)

    def _unique_branch(self, wanted: str) -> str:
        taken = set(self.session.scalars(select(Initiative.branch).where(Initiative.branch.like(f"{wanted}%"))))
        candidate, suffix = wanted, 1
        while candidate in taken:
            suffix += 1
            candidate = f"{wanted}-{suffix}"
        return candidate
