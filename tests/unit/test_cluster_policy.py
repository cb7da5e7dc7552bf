"""Pure decisions of orchestrators sharing a store: who lives, whose runs are abandoned, when one
fences itself, who merges into a branch."""

from __future__ import annotations

from pathlib import Path

from cw.store.v1 import agent_pb2, lease_pb2, task_pb2
from orchestrator_service.cluster import policy
from orchestrator_service.cluster.policy import Peers


def _lease(name: str, expires: float) -> lease_pb2.Lease:
    lease = lease_pb2.Lease(name=policy.lease_name(name))
    lease.expire_time.FromNanoseconds(int(expires * 1e9))
    return lease


def test_live_orchestrators_are_those_whose_lease_expires_after_the_stores_read() -> None:
    peers = policy.peers_from("a", [_lease("a", 110), _lease("b", 100), _lease("c", 99.5)], 100.0)
    assert peers.live == {"a"} and peers.alive("a") and not peers.alive("b") and not peers.others_alive()
    assert peers.dead == {"b", "c"}
    assert peers.alive("d")  # no lease read: it may have joined since the read
    assert Peers("a").alive("anyone")  # before the first read nobody is declared dead


def test_a_running_agent_of_a_dead_orchestrator_is_abandoned_and_only_that() -> None:
    peers = policy.peers_from("a", [_lease("a", 110), _lease("b", 110), _lease("c", 90)], 100.0)
    running, waiting = agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert policy.abandoned(agent_pb2.Agent(status=running, orchestrator="c"), peers)
    assert not policy.abandoned(agent_pb2.Agent(status=running, orchestrator="b"), peers)
    assert not policy.abandoned(agent_pb2.Agent(status=running, orchestrator="a"), peers)
    assert not policy.abandoned(agent_pb2.Agent(status=running, orchestrator=""), peers)
    assert not policy.abandoned(agent_pb2.Agent(status=waiting, orchestrator="c"), peers)
    assert not policy.abandoned(agent_pb2.Agent(status=running, orchestrator="c"), Peers("a"))
    joined_since = policy.peers_from("a", [_lease("a", 110)], 100.0)
    assert not policy.abandoned(agent_pb2.Agent(status=running, orchestrator="c"), joined_since)


def test_fencing_is_decided_by_the_time_since_the_last_renewal_was_sent() -> None:
    alone = policy.Peers("a", frozenset({"a"}), True)
    together = policy.Peers("a", frozenset({"a", "b"}), True)
    assert not policy.must_fence(0.7, 1.0, together)
    assert policy.must_fence(0.75, 1.0, together)
    assert not policy.must_fence(100.0, 1.0, alone)
    assert not policy.must_fence(100.0, 1.0, policy.Peers("a"))  # never read: nobody known


def test_every_orchestrator_names_the_same_one_merger_per_branch_and_another_once_it_died() -> None:
    names = frozenset({"east", "west", "north"})
    targets = [f"phase-{index}" for index in range(60)]
    for target in targets:
        chosen = {policy.merger_of(target, Peers(me, names, True)) for me in names}
        assert len(chosen) == 1
        assert sum(policy.merges_here(target, Peers(me, names, True)) for me in names) == 1
    spread = {policy.merger_of(target, Peers("east", names, True)) for target in targets}
    assert spread == names  # the work spreads over every orchestrator
    for target in targets:
        dead = policy.merger_of(target, Peers("east", names, True))
        alive = names - {dead}
        survivor = next(iter(alive))
        assert policy.merger_of(target, Peers(survivor, alive, True)) in alive
    assert policy.merges_here("phase-1", Peers("east"))  # leases not read yet: the lease decides


def test_names() -> None:
    assert policy.check_name("host-1:/srv/cw") == "host-1:/srv/cw"
    for bad in ("", "two words", "x" * 101):
        try:
            policy.check_name(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")
    long = policy.default_name("host", Path("/" + "d" * 200))
    assert len(long) <= 100 and long.startswith("host:")


def test_orchestrators_start_their_preferred_ready_tasks_first() -> None:
    names = frozenset({"east", "west", "north"})
    ready = [task_pb2.Task(id=f"t{index}") for index in range(30)]
    firsts = {}
    for me in names:
        ordered = policy.spread(ready, Peers(me, names, True))
        assert sorted(task.id for task in ordered) == sorted(task.id for task in ready)
        mine = [task.id for task in ordered if policy.preferred(task.id, Peers(me, names, True)) == me]
        assert [task.id for task in ordered[: len(mine)]] == mine  # its own first, in dispatch order
        firsts[me] = ordered[0].id
    assert len(set(firsts.values())) == 3  # three orchestrators start three different tasks
    alone = Peers("east", frozenset({"east"}), True)
    assert policy.spread(ready, alone) == ready


def test_a_waiting_agent_is_resumed_where_it_ran_while_its_orchestrator_lives() -> None:
    peers = policy.peers_from("a", [_lease("a", 110), _lease("b", 110), _lease("c", 90)], 100.0)
    waiting = agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
    assert policy.runs_elsewhere(agent_pb2.Agent(status=waiting, orchestrator="b"), peers)
    assert not policy.runs_elsewhere(agent_pb2.Agent(status=waiting, orchestrator="c"), peers)  # dead: adopt it
    assert not policy.runs_elsewhere(agent_pb2.Agent(status=waiting, orchestrator="a"), peers)
    assert not policy.runs_elsewhere(agent_pb2.Agent(status=waiting, orchestrator=""), peers)


def test_the_agents_deadline_is_when_their_orchestrator_would_fence_them_and_none_while_alone() -> None:
    together = policy.Peers("a", frozenset({"a", "b"}), True)
    assert policy.fence_deadline(100.0, 4.0, together) == 100.0 + policy.FENCE_SHARE * 4.0
    assert policy.must_fence(policy.FENCE_SHARE * 4.0, 4.0, together)  # the same moment
    assert policy.fence_deadline(100.0, 4.0, policy.Peers("a", frozenset({"a"}), True)) is None
    assert policy.fence_deadline(100.0, 4.0, policy.Peers("a")) is None  # never read: nobody known
    assert policy.fence_poll(4.0) == 0.4
