from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from store_service.db.models import Initiative
from store_service.domain.errors import AlreadyExists, InvalidArgument
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository

# What `git check-ref-format --branch` refuses, in one expression.
_BAD_BRANCH = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/\.)|(//)|(@\{)|([/.]$)|(\.lock(/|$))|(^@$)")


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60].rstrip("-") or "initiative"


def branches_collide(first: str, second: str) -> bool:
    """git cannot hold both `a/b` and `a/b/c`, nor the same branch twice."""
    return first == second or first.startswith(f"{second}/") or second.startswith(f"{first}/")


class SqlAlchemyInitiativeRepository(SqlAlchemyRepository[Initiative]):
    model = Initiative

    def create(self, **values: Any) -> Initiative:
        if values.get("branch"):
            self._check_branch(values["branch"], None)
        else:
            values["branch"] = self._unique_branch(f"cw/{slugify(values.get('name') or '')}")
        return super().create(**values)

    def update(self, row_id: str, **values: Any) -> Initiative:
        if values.get("branch"):
            self._check_branch(values["branch"], row_id)
        return super().update(row_id, **values)

    def find_by_status(self, status: str) -> list[Initiative]:
        return self.find_where(Initiative.status == status)

    def _branches(self, except_id: str | None) -> list[str]:
        query = select(Initiative.branch).where(Initiative.branch.is_not(None))
        if except_id:
            query = query.where(Initiative.id != except_id)
        return [branch for branch in self.session.scalars(query) if branch]

    def _check_branch(self, branch: str, except_id: str | None) -> None:
        if _BAD_BRANCH.search(branch):
            raise InvalidArgument.of("initiative.branch", f"{branch!r} is not a valid git branch name")
        if any(branches_collide(branch, taken) for taken in self._branches(except_id)):
            raise AlreadyExists("initiative", "branch")

    def _unique_branch(self, wanted: str) -> str:
        taken = self._branches(None)
        candidate, suffix = wanted, 1
        while any(branches_collide(candidate, other) for other in taken):
            suffix += 1
            candidate = f"{wanted}-{suffix}"
        return candidate
