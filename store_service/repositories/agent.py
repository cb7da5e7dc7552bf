from typing import Protocol

from store_service.db.models import Agent
from store_service.repositories.base import Repository


class AgentRepository(Repository[Agent], Protocol):
    def find_by_name(self, name: str) -> Agent | None: ...

    def find_by_task_id(self, task_id: str) -> list[Agent]: ...

    def find_by_session_id(self, session_id: str) -> Agent | None: ...

    def find_by_status(self, status: str) -> list[Agent]: ...
