from typing import Protocol

from store_service.db.models import LogChunk
from store_service.repositories.base import Repository


class LogChunkRepository(Repository[LogChunk], Protocol):
    def insert_chunk(self, agent_id: str, agent_name: str, session_number: int, content: str) -> LogChunk: ...

    def find_by_agent_id(self, agent_id: str) -> list[LogChunk]: ...

    def delete_by_agent_id(self, agent_id: str) -> int: ...

    def get_session_count(self, agent_id: str) -> int: ...
