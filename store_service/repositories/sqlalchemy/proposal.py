from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from store_service.db.models import Proposal
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


def _of_agent(agent_id: str, status: str | None) -> list[ColumnElement[bool]]:
    criteria = [Proposal.agent_id == agent_id]
    if status:
        criteria.append(Proposal.status == status)
    return criteria


class SqlAlchemyProposalRepository(SqlAlchemyRepository[Proposal]):
    model = Proposal

    def find_by_agent_id_and_status(self, agent_id: str, status: str | None = None) -> list[Proposal]:
        return self.find_where(*_of_agent(agent_id, status))

    def update_many_by_agent_id(self, agent_id: str, **values: Any) -> int:
        """Row by row rather than one UPDATE statement, so each change records its event."""
        self.check_references(values)
        rows = self.find_by_agent_id_and_status(agent_id)
        for row in rows:
            for key, value in values.items():
                setattr(row, key, value)
        self.flush()
        return len(rows)

    def count_by_agent_id_and_status(self, agent_id: str, status: str | None = None) -> int:
        query = select(func.count()).select_from(Proposal).where(*_of_agent(agent_id, status))
        return int(self.session.scalar(query) or 0)
