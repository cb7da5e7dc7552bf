"""Several orchestrators on one store, each with its own workspace (its own machine), sharing one
directory of bare repositories as their shared remotes: what tests/e2e/test_scale_out.py and
bench/scale_out.py start, kill and read.

The store is one database (`database`: a SQLite file in the fleet's root by default, or a
PostgreSQL database) served by `replicas` store processes sharing one auth directory; each
orchestrator talks to one replica, in turn. Several replicas need PostgreSQL (a SQLite file has
one store)."""

from __future__ import annotations

import contextlib
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
from orchestrator_service.agents import supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from store_service.db.location import DatabaseLocation, SqliteFile
from tests.e2e.cluster import SCRIPTED, Cluster, kill_leftover_agents, sandbox_paths
from tests.support import db_argument, stubs

LIVE = [agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]


@dataclass
class Fleet(Cluster):
    """A Cluster whose orchestrator is any of several: `members` by name. The Cluster's own
    `orchestrator` and `orch` are the first member's, so its helpers work as they do."""

    lease_ttl: float = 2.0
    # The database of every store replica (None: `store.db` in the root) and how many serve it.
    database: DatabaseLocation | None = None
    replicas: int = 1
    stores: list[Service] = field(default_factory=list)
    members: dict[str, Service] = field(default_factory=dict)
    # The replica each orchestrator talks to, by name (given at its first start).
    replica_of: dict[str, int] = field(default_factory=dict)
    stubs: dict[str, orchestrator_pb2_grpc.OrchestratorServiceStub] = field(default_factory=dict)

    @property
    def shared_dir(self) -> Path:
        return self.root / "shared"

    def workspace(self, name: str) -> Path:
        return self.root / f"workspace-{name}"

    def start_store(self) -> None:
        """Every replica (again on its previous address after a kill), one after the other: the
        first one makes the database's schema and the token files the others read."""
        database = db_argument(self.database or SqliteFile(self.root / "store.db"))
        previous = list(self.stores)
        self.stores = []
        for index in range(self.replicas):
            listen = previous[index].address if index < len(previous) else "127.0.0.1:0"
            arguments = ["--db", database, "--listen", listen, "--log-level", self.store_log_level]
            arguments += ["--auth-dir", str(self.auth_dir)]
            self.stores.append(start("store_service", arguments, self.root / f"store-{index}.log"))
        self.store = self.stores[0]
        self.api = stubs(self._channel(self.store.address))

    def start_member(self, name: str, via: str = "") -> None:
        """An orchestrator of its own workspace, every one sharing the agents' state directory (the
        scripted agent counts attempts there) and the shared remotes; it talks to its replica
        (through `via`, a proxy's address, when given)."""
        assert self.stores, "start the store first"
        previous = self.members.get(name)
        listen = previous.address if previous is not None else "127.0.0.1:0"
        replica = self.stores[self.replica_of.setdefault(name, len(self.replica_of) % len(self.stores))]
        store = via or replica.address
        arguments = ["--store", store, "--listen", listen, "--workspace", str(self.workspace(name))]
        arguments += ["--auth-dir", str(self.auth_dir), "--name", name, "--lease-ttl", str(self.lease_ttl)]
        arguments += ["--shared-remotes", str(self.shared_dir), "--retry-delays", self.retry_delays]
        for provider in self.providers:
            arguments += ["--provider", provider]
        arguments += ["--default-provider", self.providers[0].split("=")[0], "--max-agents", str(self.max_agents)]
        arguments += sandbox_paths(self.root, self.state_dir)
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
        for service in [*self.members.values(), *self.stores]:
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

    def all_agents(self) -> list[agent_pb2.Agent]:
        request, found = agent_pb2.ListAgentsRequest(page_size=1000), []
        while True:
            page = self.api.agents.ListAgents(request, timeout=10)
            found += page.agents
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    def remote_of(self, project: project_pb2.Project) -> Path:
        stored = self.api.projects.GetProject(project_pb2.GetProjectRequest(id=project.id), timeout=10)
        return Path(stored.shared_remote)

    def events_of(self, *types: str) -> list[event_pb2.Event]:
        return [event for event in self.events() if event.type in types]

    def live_processes(self, *names: str) -> list[str]:
        """The agents whose process group lives in these members' workspaces (every one's when none
        is named), by id."""
        found = []
        for name in names or self.members:
            for control in self.workspace(name).glob("agents/*"):
                if supervisor.live_process_group(AgentFiles(control)) is not None:
                    found.append(control.name)
        return found


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


class Sampler:
    """Every few milliseconds from a thread: the live agents as the store has them, and the agents'
    processes alive on every machine; a task seen with two of either at once is kept in `doubles`
    (the processes are what matters: a row says what the orchestrators believe)."""

    def __init__(self, fleet: Fleet, interval: float = 0.05) -> None:
        self.fleet = fleet
        self.interval = interval
        self.doubles: set[str] = set()
        self.samples = 0
        # The most agent processes seen alive at once (the sampler sees the work, not an idle fleet).
        self.most_processes = 0
        self._task_of: dict[str, str] = {}
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
            with contextlib.suppress(grpc.RpcError):  # a store replica being restarted: the next sample
                self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        processes = self.fleet.live_processes()
        rows = self.fleet.live_agents()
        self._task_of.update((agent.id, agent.task_id) for agent in rows)
        if any(agent_id not in self._task_of for agent_id in processes):
            self._task_of.update((agent.id, agent.task_id) for agent in self.fleet.all_agents())
        for counts in (Counter(agent.task_id for agent in rows), Counter(map(self._task_of.get, processes))):
            self.doubles |= {str(task) for task, count in counts.items() if task and count > 1}
        self.most_processes = max(self.most_processes, len(processes))
        self.samples += 1


def fleet(
    root: Path,
    max_agents: int = 4,
    lease_ttl: float = 2.0,
    retry_delays: str = "0.2",
    *,
    database: DatabaseLocation | None = None,
    replicas: int = 1,
) -> Fleet:
    """`database`, `replicas`: the store (see the module's doc)."""
    return Fleet(
        root,
        [f"scripted={SCRIPTED}"],
        max_agents,
        retry_delays=retry_delays,
        lease_ttl=lease_ttl,
        database=database,
        replicas=replicas,
    )
