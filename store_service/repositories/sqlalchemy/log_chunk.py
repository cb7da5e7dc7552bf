from __future__ import annotations

from sqlalchemy import distinct, func, select

from store_service.db.models import LogChunk
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyLogChunkRepository(SqlAlchemyRepository[LogChunk]):
    model = LogChunk

    def insert_chunk(self, agent_id: str, agent_name: str, session_number: int, content: str) -> LogChunk:
        return self.create(agent_id=agent_id, agent_name=agent_name, session_number=session_number, content=content)

    def find_by_agent_id(self, agent_id: str) -> list[LogChunk]:
        return self.find_where(LogChunk.agent_id == agent_id)

    def delete_by_agent_id(self, agent_id: str) -> int:
        rows = self.find_by_agent_id(agent_id)
        for row in rows:
            self.session.delete(row)
        self.flush()
        return len(rows)

    def get_session_count(self, agent_id: str) -> int:
        query = select(func.count(distinct(LogChunk.session_number))).where(LogChunk.agent_id == agent_id)
        return int(self.session.scalar(query) or 0)
