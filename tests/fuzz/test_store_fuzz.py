"""Thousands of arbitrary requests to every store RPC, drawn from the proto descriptors: none may
answer UNKNOWN or INTERNAL (nor anything else only a bug gives), and the store is healthy after.

`CW_FUZZ_EXAMPLES` sets the number of calls (default 3000); the counts by status code are printed
(`pytest -s` shows them).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections import Counter
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import cw.store.v1
from cw.store.v1 import agent_pb2, chat_session_pb2, initiative_pb2, page_pb2, phase_pb2, project_pb2, task_pb2
from cw_edge.tokens import Identity
from store_service import server
from tests.fuzz.proto_fuzz import Caller, IdPool, fuzz_services, methods_of
from tests.support import RunningStore

EXAMPLES = int(os.environ.get("CW_FUZZ_EXAMPLES", "3000"))


def store_services() -> list[Any]:
    """Every service of every cw.store.v1 module: a new proto file or RPC is fuzzed as it lands."""
    modules = [
        importlib.import_module(f"cw.store.v1.{info.name}")
        for info in pkgutil.iter_modules(cw.store.v1.__path__)
        if info.name.endswith("_pb2")
    ]
    return [service for module in modules for service in module.DESCRIPTOR.services_by_name.values()]


def _seed(api: SimpleNamespace) -> list[Any]:
    """Real rows of the main kinds, so that drawn requests also name rows that exist (the ids of
    what the fuzz itself creates join them)."""
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="seed"))
    )
    project = api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url="/srv/app"))
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="p"))
    )
    task = api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task_pb2.Task(phase_id=phase.id, name="t")))
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name="a", worktree_id="w", task_id=task.id))
    )
    session = api.chat_sessions.CreateChatSession(
        chat_session_pb2.CreateChatSessionRequest(
            chat_session=chat_session_pb2.ChatSession(
                target_type=chat_session_pb2.CHAT_TARGET_TYPE_PHASE, target_id=phase.id, initiative_id=initiative.id
            )
        )
    )
    page = api.pages.CreatePage(page_pb2.CreatePageRequest(page=page_pb2.Page(initiative_id=initiative.id, title="r")))
    return [initiative, project, phase, task, agent, session, page]


def test_fuzz_covers_every_service_the_store_serves() -> None:
    assert {service.full_name for service in store_services()} == set(server.service_names())


def test_no_request_makes_the_store_answer_unknown_or_internal(store: RunningStore, api: SimpleNamespace) -> None:
    """Two thirds of the calls as the orchestrator (which may call everything), a third as a client
    (which meets the permission checks too)."""
    pool = IdPool()
    for row in _seed(api):
        pool.harvest(row)
    services = store_services()
    called: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    with grpc.insecure_channel(store.address) as channel:
        for identity, share in ((Identity.ORCHESTRATOR, 2 / 3), (Identity.CLIENT, 1 / 3)):
            token = store.handle.auth.tokens[identity]
            codes += fuzz_services(
                services,
                Caller(channel, metadata=(("authorization", f"Bearer {token}"),)),
                pool,
                int(EXAMPLES * share),
                on_call=lambda method, _code: called.update([method.full_name]),
            )
        print(f"\nfuzz: {sum(codes.values())} calls over {len(called)} methods: {dict(codes.most_common())}")
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    created = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="after the fuzz"))
    )
    assert api.initiatives.GetInitiative(initiative_pb2.GetInitiativeRequest(id=created.id)) == created
    assert codes["OK"] and codes["INVALID_ARGUMENT"] and codes["NOT_FOUND"] and codes["PERMISSION_DENIED"]
    assert len(called) == len(methods_of(services)), "some RPCs were never called"
