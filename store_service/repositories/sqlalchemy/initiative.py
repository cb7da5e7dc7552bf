from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from store_service.db.models import Initiative, Project
from store_service.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from store_service.domain.rules import branches_collide, initiative_branch_problem
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository
from store_service.rules import providers

MAX_BRANCH_SUFFIX = 10_000


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60].rstrip("-") or "initiative"


class SqlAlchemyInitiativeRepository(SqlAlchemyRepository[Initiative]):
    model = Initiative

    def create(self, **values: Any) -> Initiative:
        providers.check("initiative", values)
        if values.get("branch"):
            self._check_branch(values["branch"], None)
        else:
            values["branch"] = self._unique_branch(f"cw/{slugify(values.get('name') or '')}")
        return super().create(**values)

    def update(self, row_id: str, **values: Any) -> Initiative:
        providers.check("initiative", values)
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

    def _project_branches(self) -> list[str]:
        return list(self.session.scalars(select(Project.default_branch).distinct()))

    def _check_branch(self, branch: str, except_id: str | None) -> None:
        problem = initiative_branch_problem(branch, self._project_branches())
        if problem is not None:
            raise InvalidArgument.of("initiative.branch", problem)
        if any(branches_collide(branch, taken) for taken in self._branches(except_id)):
            raise AlreadyExists("initiative", "branch")

    def _unique_branch(self, wanted: str) -> str:
        taken = self._branches(None) + self._project_branches()
        for suffix in range(1, MAX_BRANCH_SUFFIX):
            candidate = wanted if suffix == 1 else f"{wanted}-{suffix}"
            if not any(branches_collide(candidate, other) for other in taken):
                return candidate
        # Only when a project's default branch is `cw`, under which every default would lie.
        raise FailedPrecondition("no free default branch; give the initiative one", field="initiative.branch")
