from typing import Protocol

from store_service.db.models import Initiative
from store_service.repositories.base import Repository


class InitiativeRepository(Repository[Initiative], Protocol):
    def find_by_status(self, status: str) -> list[Initiative]: ...
