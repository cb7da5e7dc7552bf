from __future__ import annotations

from sqlalchemy import select

from store_service.db.models import Agent
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyAgentRepository(SqlAlchemyRepository[Agent]):
    model = Agent

    def find_by_name(self, name: str) -> Agent | None:
        return self.session.scalars(select(Agent).where(Agent.name == name)).first()

    def find_by_task_id(self, task_id: str) -> list[Agent]:
        return self.find_where(Agent.task_id == task_id)

    def find_by_session_id(self, session_id: str) -> Agent | None:
        return self.session.scalars(select(Agent).where(Agent.session_id == session_id)).first()

    def find_by_status(self, status: str) -> list[Agent]:
        return self.find_where(Agent.status == status)
