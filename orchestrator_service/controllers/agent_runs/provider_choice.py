"""Which provider a task's run starts on (README, "Providers, fallback and an account's cap"):
pure decisions over what the cache holds (the task, its initiative, every account and the live agents), no I/O.

The provider a task wants is its own `provider`, else its initiative's, else the orchestrator's
`--default-provider`. A name this orchestrator does not know keeps the task waiting, saying so.
When every account of the wanted provider rests (`exhausted_until` ahead) or is unusable (its
credential refused), the task goes to the first of its initiative's `fallback_providers`, in
order, that this orchestrator knows and that does not rest likewise: a provider with a free
account, or with none at all (it needs none). No attempt is spent either way: a task that cannot
start waits (PENDING) with the reason. An account at its cap (`max_concurrent_agents`) is busy,
not resting: its task waits for a slot rather than moving.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cw.store.v1 import account_pb2, agent_pb2, initiative_pb2, task_pb2

# The start of a task's reason once it was moved (the inbox lists such tasks: clients/cli/commands/inbox.py).
MOVED_PREFIX = "moved from provider "


@dataclass(frozen=True)
class Choice:
    """The provider a run starts on; `wanted` is the one the task asked for, `why` says why each
    provider before `provider` was passed over (empty when it is the wanted one)."""

    provider: str
    wanted: str
    why: str = ""

    @property
    def moved(self) -> bool:
        return self.provider != self.wanted

    def note(self) -> str:
        """What the task's reason says while it runs elsewhere ("" when not moved)."""
        return f"{MOVED_PREFIX}{self.wanted} to {self.provider}: {self.why}" if self.moved else ""


@dataclass(frozen=True)
class Wait:
    """No provider can take the task now: why."""

    reason: str


def wanted_provider(task: task_pb2.Task, initiative: initiative_pb2.Initiative | None, default: str) -> str:
    return task.provider or (initiative.provider if initiative is not None else "") or default


def rests(account: account_pb2.Account, now: datetime) -> bool:
    """Resting (a rest with no end, or one that has not passed) or unusable (credential refused)."""
    if account.unusable_reason:
        return True
    if not account.is_exhausted:
        return False
    return not account.HasField("exhausted_until") or _time(account.exhausted_until) > now


def _time(stamp: object) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]


def _shown(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rest_text(provider: str, accounts: Iterable[account_pb2.Account], now: datetime) -> str:
    """Why a provider whose every account rests cannot take a task: until when, and how many refused."""
    accounts = list(accounts)
    ends = [
        _time(a.exhausted_until)
        for a in accounts
        if not a.unusable_reason and a.is_exhausted and a.HasField("exhausted_until")
    ]
    open_ended = any(not a.unusable_reason and a.is_exhausted and not a.HasField("exhausted_until") for a in accounts)
    refused = sum(1 for a in accounts if a.unusable_reason)
    states = []
    if ends:
        states.append(f"resting until {_shown(min(ends))}")
    elif open_ended:
        states.append("resting")
    if refused:
        states.append("unusable (its credential refused)")
    return f"every account of {provider} is {' or '.join(states)}"


def choose(
    task: task_pb2.Task,
    initiative: initiative_pb2.Initiative | None,
    default: str,
    *,
    known: Collection[str],
    accounts: Iterable[account_pb2.Account],
    now: datetime,
) -> Choice | Wait:
    """The provider the task's next run starts on, or why it waits (module docstring)."""
    wanted = wanted_provider(task, initiative, default)
    if wanted not in known:
        return Wait(
            f"provider {wanted!r} is not known to this orchestrator (it runs {', '.join(sorted(known))}): "
            f"start it with --provider {wanted}=COMMAND, or name another provider for the task"
        )
    fallbacks = list(initiative.fallback_providers) if initiative is not None else []
    by_provider: dict[str, list[account_pb2.Account]] = {}
    for account in accounts:
        by_provider.setdefault(account.provider, []).append(account)
    passed: list[str] = []
    for name in dict.fromkeys([wanted, *fallbacks]):
        if name not in known:
            passed.append(f"{name} is not known to this orchestrator")
            continue
        own = by_provider.get(name, [])
        if own and all(rests(account, now) for account in own):
            passed.append(rest_text(name, own, now))
            continue
        return Choice(name, wanted, "; ".join(passed))
    if not fallbacks:
        return Wait(passed[0])
    return Wait("; ".join(passed) + f" (fallback providers: {', '.join(fallbacks)})")


def live_on(account_id: str, agents: Iterable[agent_pb2.Agent]) -> int:
    """How many of these live agents use the account."""
    return Counter(agent.account_id for agent in agents)[account_id]


def at_cap(account: account_pb2.Account | None, live: int) -> str | None:
    """Why a run on this account must wait for one of its agents to end, or None."""
    if account is None or account.max_concurrent_agents <= 0 or live < account.max_concurrent_agents:
        return None
    cap = account.max_concurrent_agents
    return f"waiting for a free slot on account {account.email}: it runs at most {cap} agent(s) at once"
