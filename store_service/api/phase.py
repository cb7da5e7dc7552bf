from __future__ import annotations

from typing import Any

from cw.store.v1 import phase_pb2, phase_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Phase, PhaseDependency
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork

PHASE = Resource(Phase, phase_pb2.Phase, "phase", lambda uow: uow.phases)
PHASE_DEPENDENCY = Resource(PhaseDependency, phase_pb2.PhaseDependency, "dependency", lambda uow: uow.phases)


class PhaseServicer(ResourceServicer[phase_pb2.Phase], phase_pb2_grpc.PhaseServiceServicer):
    resource = PHASE
    # With `depends_on_phase_ids`: store_service/writes/changes.py.
    CreatePhase = ResourceServicer.create_rpc
    GetPhase = ResourceServicer.get_rpc
    UpdatePhase = ResourceServicer.update_rpc
    DeletePhase = ResourceServicer.delete_rpc

    async def ListPhases(self, request: Any, _context: Any) -> phase_pb2.ListPhasesResponse:
        phases, token = await self.list_page(request, ["initiative_id", "status", "statuses"])
        return phase_pb2.ListPhasesResponse(phases=phases, next_page_token=token)

    async def CreatePhaseDependency(self, request: Any, _context: Any) -> phase_pb2.PhaseDependency:
        phase_id = required_id(request.phase_id, "phase_id")
        depends_on = required_id(request.depends_on_phase_id, "depends_on_phase_id")
        return await self.db.write(
            lambda uow: PHASE_DEPENDENCY.to_message(uow.phases.create_dependency(phase_id, depends_on))
        )

    async def ListPhaseDependencies(self, request: Any, _context: Any) -> phase_pb2.ListPhaseDependenciesResponse:
        phase_id = required_id(request.phase_id, "phase_id")

        def work(uow: SqlAlchemyUnitOfWork) -> list[phase_pb2.Phase]:
            uow.phases.get(phase_id)
            return [PHASE.to_message(phase) for phase in uow.phases.get_dependencies(phase_id)]

        return phase_pb2.ListPhaseDependenciesResponse(phases=await self.db.read(work))

    async def ListPhaseDependents(self, request: Any, _context: Any) -> phase_pb2.ListPhaseDependentsResponse:
        phase_id = required_id(request.phase_id, "phase_id")

        def work(uow: SqlAlchemyUnitOfWork) -> list[phase_pb2.Phase]:
            uow.phases.get(phase_id)
            return [PHASE.to_message(phase) for phase in uow.phases.get_dependents(phase_id)]

        return phase_pb2.ListPhaseDependentsResponse(phases=await self.db.read(work))
