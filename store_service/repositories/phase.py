from typing import Protocol

from store_service.db.models import Phase, PhaseDependency
from store_service.repositories.base import Repository


class PhaseRepository(Repository[Phase], Protocol):
    def create_dependency(self, phase_id: str, depends_on_phase_id: str) -> PhaseDependency: ...

    def get_dependencies(self, phase_id: str) -> list[Phase]: ...

    def get_dependents(self, phase_id: str) -> list[Phase]: ...

    def find_by_initiative_id(self, initiative_id: str) -> list[Phase]: ...
