"""Pure decisions of orchestrators that share a store: names, whose agent is whose, which
orchestrators live (their leases, by the store's clock), which runs another must take over.

No I/O: membership.py reads the leases, the takeovers controller acts on what this decides.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cw.store.v1 import agent_pb2, lease_pb2, task_pb2

ORCHESTRATOR_LEASES = "orchestrator/"
# An orchestrator that has heard nothing back for this share of its ttl since it sent its last
# successful renewal ends its agents' processes (`must_fence`).
FENCE_SHARE = 0.75
MERGE_LEASES = "merge/"
# Printable, no spaces: it shows in `cw` tables and lease names.
_NAME = re.compile(r"[A-Za-z0-9._:/@+-]{1,100}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")


def check_name(name: str) -> str:
    """An orchestrator's `--name`; ValueError saying what is wrong with it."""
    if not _NAME.fullmatch(name):
        raise ValueError("an orchestrator's name is 1 to 100 letters, digits and . _ : / @ + -")
    return name


def default_name(host: str, workspace: Path) -> str:
    """`<host>:<workspace>`: unique per machine and workspace (one orchestrator per workspace), and
    the same across restarts, so a restarted orchestrator finds its own agents."""
    name = _UNSAFE.sub("_", f"{host or 'localhost'}:{workspace}")
    if len(name) <= 100:
        return name
    digest = hashlib.sha256(str(workspace).encode()).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', host)[:80]}:{digest}"


def lease_name(orchestrator: str) -> str:
    return ORCHESTRATOR_LEASES + orchestrator


def merge_lease(target_id: str) -> str:
    """Held while merging into the branch of this phase or initiative (or sending the phase back)."""
    return MERGE_LEASES + target_id


def is_mine(agent: agent_pb2.Agent, me: str) -> bool:
    """The orchestrator that runs an agent supervises it; agents recorded before orchestrators had
    names belong to whichever runs them now (one orchestrator, as it was then)."""
    return agent.orchestrator in ("", me)


@dataclass(frozen=True)
class Peers:
    """Which orchestrators live, as their leases said when last read. Only an orchestrator whose
    lease was read expired counts as dead: one whose lease was not among those read may have
    joined since, and before the first read (`known` False) every one counts as alive. Nothing is
    taken over on a guess."""

    me: str = ""
    live: frozenset[str] = frozenset()
    known: bool = False
    # Orchestrators whose lease had expired at the read.
    dead: frozenset[str] = frozenset()

    def alive(self, name: str) -> bool:
        return not self.known or name == self.me or name not in self.dead

    def others_alive(self) -> bool:
        return bool(self.live - {self.me})


def peers_from(me: str, leases: Iterable[lease_pb2.Lease], read_time_seconds: float) -> Peers:
    """Live: orchestrators whose lease expires after the store's time of the read; dead: those
    whose lease had expired by then."""
    expiries = {
        lease.name.removeprefix(ORCHESTRATOR_LEASES): _seconds(lease)
        for lease in leases
        if lease.name.startswith(ORCHESTRATOR_LEASES)
    }
    live = frozenset(name for name, expiry in expiries.items() if expiry > read_time_seconds)
    return Peers(me, live, True, frozenset(expiries) - live)


def _seconds(lease: lease_pb2.Lease) -> float:
    return lease.expire_time.seconds + lease.expire_time.nanos / 1e9


def abandoned(agent: agent_pb2.Agent, peers: Peers) -> bool:
    """A running agent whose orchestrator no longer holds its lease: its machine (or the way to it)
    is gone, and its run with it. Another orchestrator settles the run as crashed. A waiting agent
    holds no process and waits where it is: whoever resumes it takes it over then."""
    return (
        agent.status == agent_pb2.AGENT_STATUS_RUNNING
        and bool(agent.orchestrator)
        and agent.orchestrator != peers.me
        and not peers.alive(agent.orchestrator)
    )


def must_fence(since_renewal_sent: float, ttl: float, peers: Peers) -> bool:
    """Whether this orchestrator ends its agents' processes now: its lease may lapse before it
    renews it (the store expires it `ttl` after a renewal, which reached the store after it was
    sent), and another orchestrator would then take its runs over and start new ones, while these
    still work. Only while other orchestrators lived when last seen: a lone orchestrator's agents
    outlive a store outage and are settled once the store is back, as they always were."""
    return peers.others_alive() and since_renewal_sent >= FENCE_SHARE * ttl


def fence_deadline(renewal_sent: float, ttl: float, peers: Peers) -> float | None:
    """Until when this orchestrator's agents may run on their own (the shim's fence, on the clock
    `renewal_sent` was read on: the send time of its last successful acquire or renewal): the
    moment `must_fence` would end them, which a stopped orchestrator or a frozen machine cannot
    act on. None while no other orchestrator lived when last seen (nobody would take the runs
    over: they outlive a restart of their orchestrator and a store outage)."""
    return renewal_sent + FENCE_SHARE * ttl if peers.others_alive() else None


def fence_poll(ttl: float) -> float:
    """How often the shims read the fence: a tenth of the ttl, so a run ends well before its
    orchestrator's lease may lapse (a quarter of the ttl after the deadline)."""
    return ttl / 10


FENCED_REASON = "fenced: its orchestrator's lease was not renewed in time (stopped, or its machine froze)"


def preferred(key: str, peers: Peers) -> str:
    """The live orchestrator that takes on the work keyed `key` before the others: the same one for
    every orchestrator that read the same leases (rendezvous hashing: keys spread evenly, and only
    a dead one's keys move); another one as soon as it is seen dead."""
    names = peers.live | {peers.me}
    return max(sorted(names), key=lambda name: hashlib.sha256(f"{name}\0{key}".encode()).digest())


def merger_of(target_id: str, peers: Peers) -> str:
    """The orchestrator that merges tasks into this phase's (or initiative's) branch, so that they
    do not all queue for its merge lease."""
    return preferred(target_id, peers)


def spread(ready: Sequence[task_pb2.Task], peers: Peers) -> list[task_pb2.Task]:
    """Ready tasks in the order this orchestrator starts them: its preferred ones first, then the
    others (a busy orchestrator's), each in dispatch order. Orchestrators sharing a store then
    mostly start different tasks instead of racing for the same first ones (one start of each
    wins: the task's write is conditional; the others read again and try the next)."""
    if not peers.others_alive():
        return list(ready)
    first = [task for task in ready if preferred(task.id, peers) == peers.me]
    return first + [task for task in ready if preferred(task.id, peers) != peers.me]


def merges_here(target_id: str, peers: Peers) -> bool:
    """Whether this orchestrator merges tasks into the target's branch. Before the leases were
    first read, every orchestrator may: the merge lease still lets one at a time."""
    return not peers.known or merger_of(target_id, peers) == peers.me


def runs_elsewhere(agent: agent_pb2.Agent, peers: Peers) -> bool:
    """Another orchestrator ran the agent and lives: it resumes the agent (an answer, a reply), in
    the CLI session it keeps; once it is dead, whoever resumes the agent adopts it."""
    return not is_mine(agent, peers.me) and peers.alive(agent.orchestrator)


def takeover_reason(agent: agent_pb2.Agent) -> str:
    return (
        f"its orchestrator {agent.orchestrator} stopped renewing its lease (its machine died or lost "
        "the store): the run is lost and counts as a crashed attempt"
    )
