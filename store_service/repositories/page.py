from typing import Protocol

from store_service.db.models import Page
from store_service.repositories.base import Repository


class PageRepository(Repository[Page], Protocol):
    def find_root_page(self, initiative_id: str) -> Page | None: ...

    def get_or_create_root_page(self, initiative_id: str, title: str | None = None) -> Page:
        """Never makes a second root page for an initiative."""
        ...

    def find_by_parent_page_id(self, parent_page_id: str) -> list[Page]: ...
