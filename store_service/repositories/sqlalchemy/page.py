from __future__ import annotations

from typing import Any

from store_service.db.models import Initiative, Page
from store_service.domain.errors import NotFound
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository
from store_service.rules.consistency import PAGE_TREE


class SqlAlchemyPageRepository(SqlAlchemyRepository[Page]):
    model = Page

    def create(self, **values: Any) -> Page:
        PAGE_TREE.check(self.session, None, None, values)
        return super().create(**values)

    def update(self, row_id: str, **values: Any) -> Page:
        PAGE_TREE.check(self.session, row_id, self.get(row_id), values)
        return super().update(row_id, **values)

    def find_root_page(self, initiative_id: str) -> Page | None:
        roots = self.find_where(Page.initiative_id == initiative_id, Page.parent_page_id.is_(None))
        return roots[0] if roots else None

    def get_or_create_root_page(self, initiative_id: str, title: str | None = None) -> Page:
        """Safe under concurrency: writes hold SQLite's write lock from BEGIN IMMEDIATE, so the
        look-up and the insert cannot interleave with another writer's; a partial unique index
        backs that up."""
        root = self.find_root_page(initiative_id)
        if root is not None:
            return root
        initiative = self.session.get(Initiative, initiative_id)
        if initiative is None:
            raise NotFound("initiative", initiative_id)
        return self.create(initiative_id=initiative_id, parent_page_id=None, title=title or initiative.name)

    def find_by_parent_page_id(self, parent_page_id: str) -> list[Page]:
        return self.find_where(Page.parent_page_id == parent_page_id)
