from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store_service.db.models import Phase, PhaseDependency
from store_service.domain.errors import FailedPrecondition
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository, constraint_errors
from store_service.repositories.sqlalchemy.dependencies import check_new_edge
from store_service.rules.consistency import check_phase_move


class SqlAlchemyPhaseRepository(SqlAlchemyRepository[Phase]):
    model = Phase

    def update(self, row_id: str, **values: Any) -> Phase:
        check_phase_move(self.session, self.get(row_id), values)
        return super().update(row_id, **values)

    def create_dependency(self, phase_id: str, depends_on_phase_id: str) -> PhaseDependency:
        self.check_dependency(phase_id, depends_on_phase_id)
        edge = PhaseDependency(phase_id=phase_id, depends_on_phase_id=depends_on_phase_id)
        self.session.add(edge)
        with constraint_errors(PhaseDependency):
            self.session.flush()
        return edge

    def check_dependency(self, phase_id: str, depends_on_phase_id: str) -> None:
        """Both phases exist, in one initiative, and the edge closes no cycle."""
        phase, dependency = self.get(phase_id), self.get(depends_on_phase_id)
        if phase.initiative_id != dependency.initiative_id:
            raise FailedPrecondition(
                "depends_on_phase_id: phases of different initiatives cannot depend on each other",
                "INITIATIVE_MISMATCH",
                field="depends_on_phase_id",
            )
        check_new_edge(
            self.session,
            PhaseDependency.phase_id,
            PhaseDependency.depends_on_phase_id,
            phase_id,
            depends_on_phase_id,
        )

    def get_dependencies(self, phase_id: str) -> list[Phase]:
        ids = select(PhaseDependency.depends_on_phase_id).where(PhaseDependency.phase_id == phase_id)
        return self.find_where(Phase.id.in_(ids))

    def get_dependents(self, phase_id: str) -> list[Phase]:
        ids = select(PhaseDependency.phase_id).where(PhaseDependency.depends_on_phase_id == phase_id)
        return self.find_where(Phase.id.in_(ids))

    def find_by_initiative_id(self, initiative_id: str) -> list[Phase]:
        return self.find_where(Phase.initiative_id == initiative_id)
