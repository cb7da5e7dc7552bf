"""Several orchestrators on one store, each with its own workspace (its own machine), sharing one
directory of bare repositories as their shared remotes: what tests/e2e/test_scale_out.py and
bench/scale_out.py start, kill and read."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from clients.local import Service, start
from cw.orchestrator.v1 import orchestrator_pb2_grpc
from cw.store.v1 import agent_pb2, event_pb2, project_pb2
from tests.e2e.cluster import SCRIPTED, Cluster, kill_leftover_agents

LIVE = [agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]


@dataclass
class Fleet(Cluster):
    """A Cluster whose orchestrator is any of several: `members` by name. The Cluster's own
    `orchestrator` and `orch` are the first member's, so its helpers work as they do."""

    lease_ttl: float = 2.0
    members: dict[str, Service] = field(default_factory=dict)
    stubs: dict[str, orchestrator_pb2_grpc.OrchestratorServiceStub] = field(default_factory=dict)

    @property
    def shared_dir(self) -> Path:
        return self.root / "shared"

    def workspace(self, name: str) -> Path:
        return self.root / f"workspace-{name}"

    def start_member(self, name: str) -> None:
        """An orchestrator of its own workspace, every one sharing the agents' state directory (the
        scripted agent counts attempts there) and the shared remotes."""
        assert self.store is not None
        previous = self.members.get(name)
        listen = previous.address if previous is not None else "127.0.0.1:0"
        arguments = ["--store", self.store.address, "--listen", listen, "--workspace", str(self.workspace(name))]
        arguments += ["--auth-dir", str(self.auth_dir), "--name", name, "--lease-ttl", str(self.lease_ttl)]
        arguments += ["--shared-remotes", str(self.shared_dir), "--retry-delays", self.retry_delays]
        for provider in self.providers:
            arguments += ["--provider", provider]
        arguments += ["--default-provider", self.providers[0].split("=")[0], "--max-agents", str(self.max_agents)]
        self.state_dir.mkdir(exist_ok=True)
        env = {**os.environ, "CW_TEST_STATE_DIR": str(self.state_dir)}
        service = start("orchestrator_service", arguments, self.root / f"orchestrator-{name}.log", env=env)
        self.members[name] = service
        self.stubs[name] = orchestrator_pb2_grpc.OrchestratorServiceStub(self._channel(service.address))
        if self.orchestrator is None or self.orchestrator is previous:
            self.orchestrator, self.orch = service, self.stubs[name]

    def kill_member(self, name: str) -> None:
        """The machine dies: its orchestrator and every agent it runs, by SIGKILL."""
        self.members[name].kill()
        kill_leftover_agents(self.workspace(name))

    def close(self) -> None:
        for service in self.members.values():
            if service.process.poll() is None:
                service.kill()
        self.orchestrator = None
        super().close()
        for name in self.members:
            kill_leftover_agents(self.workspace(name))

    # ---- reading ----------------------------------------------------------------------------------

    def live_agents(self) -> list[agent_pb2.Agent]:
        request = agent_pb2.ListAgentsRequest(statuses=LIVE, page_size=1000)
        return list(self.api.agents.ListAgents(request, timeout=10).agents)

    def remote_of(self, project: project_pb2.Project) -> Path:
        stored = self.api.projects.GetProject(project_pb2.GetProjectRequest(id=project.id), timeout=10)
        return Path(stored.shared_remote)

    def events_of(self, *types: str) -> list[event_pb2.Event]:
        return [event for event in self.events() if event.type in types]


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


class Sampler:
    """Lists live agents every few milliseconds from a thread; a task seen with two at once is kept."""

    def __init__(self, fleet: Fleet, interval: float = 0.05) -> None:
        self.fleet = fleet
        self.interval = interval
        self.doubles: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                counts = Counter(agent.task_id for agent in self.fleet.live_agents())
            except grpc.RpcError:
                counts = Counter()
            self.doubles |= {task for task, count in counts.items() if count > 1}
            self.samples += 1
            self._stop.wait(self.interval)


def fleet(root: Path, max_agents: int = 4, lease_ttl: float = 2.0, retry_delays: str = "0.2") -> Fleet:
    return Fleet(root, [f"scripted={SCRIPTED}"], max_agents, retry_delays=retry_delays, lease_ttl=lease_ttl)
