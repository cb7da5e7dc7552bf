"""Arbitrary requests to every orchestrator RPC, drawn from its proto descriptors by the same
machinery as the store's fuzz test: none may answer UNKNOWN or INTERNAL (nor anything else only a
bug gives), and the orchestrator is healthy and does its work after.

`CW_FUZZ_ORCHESTRATOR_EXAMPLES` sets the number of calls (default 1000): each may do real work (a
diff, a merge, an agent started), so fewer than the store's.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cw.orchestrator.v1 import orchestrator_pb2
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import phase_pb2, task_pb2
from cw_edge.tokens import Identity
from tests.e2e.cluster import cluster
from tests.fuzz.proto_fuzz import Caller, IdPool, fuzz_services, methods_of
from tests.support import tokens_in

EXAMPLES = int(os.environ.get("CW_FUZZ_ORCHESTRATOR_EXAMPLES", "1000"))


def test_no_request_makes_the_orchestrator_answer_like_a_bug(tmp_path: Path) -> None:
    services = list(orchestrator_pb2.DESCRIPTOR.services_by_name.values())
    with cluster(tmp_path) as c:
        assert c.orchestrator is not None
        pool = IdPool()
        initiative = c.initiative("Fuzzed", c.project())
        phases = [c.phase(initiative, f"p{i}") for i in range(3)]
        for phase in phases:
            pool.harvest(phase)
            pool.harvest(c.task(phase, "t", files={"t.txt": "t"}))
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phases[0].id), timeout=10)
        c.wait_phase(phases[0].id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        for task in c.api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phases[0].id)).tasks:
            for agent in c.agents_of(task.id):
                pool.harvest(agent)
        token = tokens_in(c.auth_dir)[Identity.CLIENT]
        called: Counter[str] = Counter()
        with grpc.insecure_channel(c.orchestrator.address) as channel:
            codes = fuzz_services(
                services,
                Caller(channel, metadata=(("authorization", f"Bearer {token}"),)),
                pool,
                EXAMPLES,
                on_call=lambda method, _code: called.update([method.full_name]),
            )
            print(f"\nfuzz: {sum(codes.values())} calls over {len(called)} methods: {dict(codes.most_common())}")
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert len(called) == len(methods_of(services)), "some RPCs were never called"
        assert codes["INVALID_ARGUMENT"] and codes["NOT_FOUND"]
        # Still doing its work: a phase made and approved after the fuzz runs to review.
        after = c.phase(c.initiative("After the fuzz", c.project("after")), "P")
        c.task(after, "t", files={"after.txt": "a"})
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=after.id), timeout=10)
        c.wait_phase(after.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        c.assert_invariants()
