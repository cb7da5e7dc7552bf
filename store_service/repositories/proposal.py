from typing import Any, Protocol

from store_service.db.models import Proposal
from store_service.repositories.base import Repository


class ProposalRepository(Repository[Proposal], Protocol):
    def find_by_agent_id_and_status(self, agent_id: str, status: str | None = None) -> list[Proposal]: ...

    def update_many_by_agent_id(self, agent_id: str, **values: Any) -> int: ...

    def count_by_agent_id_and_status(self, agent_id: str, status: str | None = None) -> int: ...
