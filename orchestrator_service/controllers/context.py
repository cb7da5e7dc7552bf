"""What every controller shares: the store, the cache and its writer, the workspace, the settings."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cw.store.v1 import agent_pb2
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.sandbox import SandboxPolicy
from orchestrator_service.agents.usage import Price
from orchestrator_service.cache.state import Cache
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.leases import Leases, MergeLocks
from orchestrator_service.cluster.policy import Peers
from orchestrator_service.controllers.agent_runs.output import DEFAULT_MAX_OUTPUT_BYTES, OutputShipper
from orchestrator_service.git import checkpoints
from orchestrator_service.git.workspace import Workspace
from orchestrator_service.outcomes import DEFAULT_RETRY_DELAYS
from orchestrator_service.ports import StorePort
from orchestrator_service.store_client import StoreClient
from orchestrator_service.writes import Writer


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    providers: dict[str, Provider]
    default_provider: str
    max_agents: int = 4
    # Pauses before the 1st, 2nd and 3rd retry of a failed attempt.
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    # Claude Code runs with IS_SANDBOX=1 (README, "Root and `--agents-in-sandbox`").
    agents_in_sandbox: bool = False
    # cw's own sandbox for every run (agents/sandbox.py); disabled by --agents-in-sandbox.
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    # Several orchestrators on one store (README, "Several orchestrators"): this one's name (`--name`), the owner id its
    # leases carry (its workspace's), their ttl, and where new shared remotes go (`--shared-remotes`).
    name: str = ""
    owner: str = ""
    lease_ttl: float = 15.0
    shared_remotes: str = ""
    # What the store keeps of one run's output (`--max-output-bytes`, controllers/agent_runs/output.py).
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    # What agents leave (README, "What happens to uncommitted work"): files over this size stay out
    # of checkpoints; agents' commits name them at this domain (`--checkpoint-max-file-bytes`, `--agent-email-domain`).
    checkpoint_max_file_bytes: int = checkpoints.DEFAULT_MAX_FILE_BYTES
    # What a run's worktree may hold when it settles (`--agent-max-worktree-bytes`): past it, said.
    max_worktree_bytes: int = checkpoints.DEFAULT_MAX_WORKTREE_BYTES
    agent_email_domain: str = checkpoints.DEFAULT_EMAIL_DOMAIN
    # USD per million tokens per model (`--prices`), for CLIs that report no cost (agents/usage.py).
    prices: Mapping[str, Price] = field(default_factory=dict)


@dataclass
class Context:
    store: StoreClient
    cache: Cache
    writer: Writer
    root: Path
    settings: Settings
    shipper: OutputShipper
    git: Workspace = field(init=False)
    clock: Callable[[], datetime] = utc_now
    # Shims this process started, so they are reaped (and reachable before they record themselves).
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Tasks whose run is being started right now, by task id: set once the process runs and its
    # pid is recorded (or the start failed), so a stop of that very agent lands after it.
    spawning: dict[str, asyncio.Event] = field(default_factory=dict)
    # The other orchestrators, as their leases said last (cluster/membership.py keeps it current).
    peers: Peers = field(default_factory=Peers)
    # This orchestrator's lease may be lapsing (cluster/membership.py): no run starts here.
    fenced: bool = False
    leases: Leases = field(init=False)
    locks: MergeLocks = field(init=False)

    def __post_init__(self) -> None:
        self.git = Workspace(self.root, self.settings.checkpoint_max_file_bytes)
        self.leases = Leases(self.store, self.settings.owner or self.settings.name)
        self.locks = MergeLocks(self.leases, self.settings.lease_ttl)
        self.peers = Peers(self.settings.name)

    @property
    def port(self) -> StorePort:
        """The store as the deciding controllers (phases, tasks, initiatives, merges) reach it: only
        what ports.py names, which the in-memory fake of the tests implements too."""
        return self.store

    def mine(self, agent: agent_pb2.Agent) -> bool:
        """This orchestrator runs the agent: it watches and settles it."""
        return policy.is_mine(agent, self.settings.name)

    def runs_elsewhere(self, agent: agent_pb2.Agent) -> bool:
        """Another live orchestrator ran the agent: it resumes it (`policy.runs_elsewhere`)."""
        return policy.runs_elsewhere(agent, self.peers)

    def my_running(self) -> list[agent_pb2.Agent]:
        """The running agents this orchestrator supervises: what counts against `--max-agents`."""
        return [agent for agent in self.cache.running() if self.mine(agent)]
