"""Which provider a task's run starts on (orchestrator_service/controllers/agent_runs/provider_choice.py):
the task's own, its initiative's, the default; fallback when every account rests; a cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from cw.store.v1 import account_pb2, agent_pb2, initiative_pb2, task_pb2
from orchestrator_service.controllers.agent_runs import launches, provider_choice
from orchestrator_service.controllers.agent_runs.provider_choice import Choice, Wait
from orchestrator_service.controllers.agent_runs.run_inputs import Continuation

NOW = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
KNOWN = ("claude", "codex", "gemini")


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _account(provider: str, *, rests_for: float | None = None, refused: str = "", cap: int = 0) -> account_pb2.Account:
    account = account_pb2.Account(
        id=f"{provider}-account", email=f"{provider}@x", provider=provider, unusable_reason=refused
    )
    account.max_concurrent_agents = cap
    if rests_for is not None:
        account.is_exhausted = True
        account.exhausted_until.CopyFrom(_stamp(NOW + timedelta(seconds=rests_for)))
    return account


def _choose(
    task: task_pb2.Task | None = None,
    initiative: initiative_pb2.Initiative | None = None,
    accounts: list[account_pb2.Account] | None = None,
    default: str = "claude",
) -> Choice | Wait:
    return provider_choice.choose(
        task or task_pb2.Task(id="t"), initiative, default, known=KNOWN, accounts=accounts or [], now=NOW
    )


def test_the_tasks_own_provider_wins_over_its_initiatives_and_the_default() -> None:
    initiative = initiative_pb2.Initiative(provider="gemini")
    assert _choose(task_pb2.Task(provider="codex"), initiative) == Choice("codex", "codex")
    assert _choose(task_pb2.Task(), initiative) == Choice("gemini", "gemini")
    assert _choose(task_pb2.Task(), initiative_pb2.Initiative()) == Choice("claude", "claude")
    assert _choose(task_pb2.Task(), None, default="codex") == Choice("codex", "codex")


def test_an_unknown_provider_waits_saying_so_and_how_to_fix_it() -> None:
    waits = _choose(task_pb2.Task(provider="amp"), initiative_pb2.Initiative(fallback_providers=["codex"]))
    assert isinstance(waits, Wait)
    assert "'amp' is not known to this orchestrator" in waits.reason and "--provider amp=COMMAND" in waits.reason


def test_every_account_resting_moves_the_task_to_the_first_fallback_that_has_a_free_account_or_needs_none() -> None:
    initiative = initiative_pb2.Initiative(provider="claude", fallback_providers=["codex", "gemini"])
    claude_rests = _account("claude", rests_for=600)
    codex_refused = _account("codex", refused="Invalid API key")
    chosen = _choose(initiative=initiative, accounts=[claude_rests, codex_refused])
    assert isinstance(chosen, Choice) and chosen.provider == "gemini" and chosen.moved  # gemini needs no account
    until = (NOW + timedelta(seconds=600)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert chosen.note() == (
        f"moved from provider claude to gemini: every account of claude is resting until {until}; "
        "every account of codex is unusable (its credential refused)"
    )
    free_codex = _account("codex")
    assert _choose(initiative=initiative, accounts=[claude_rests, free_codex]) == Choice(
        "codex", "claude", f"every account of claude is resting until {until}"
    )


def test_a_rest_that_passed_or_one_free_account_keeps_the_task_on_its_provider() -> None:
    initiative = initiative_pb2.Initiative(fallback_providers=["codex"])
    over = _account("claude", rests_for=-1)
    assert _choose(initiative=initiative, accounts=[over]) == Choice("claude", "claude")
    other = account_pb2.Account(id="second", email="b@x", provider="claude")
    assert _choose(initiative=initiative, accounts=[_account("claude", rests_for=60), other]) == Choice(
        "claude", "claude"
    )


def test_an_account_at_its_cap_is_busy_not_resting_so_the_task_does_not_move() -> None:
    capped = _account("claude", cap=1)
    initiative = initiative_pb2.Initiative(fallback_providers=["codex"])
    assert _choose(initiative=initiative, accounts=[capped]) == Choice("claude", "claude")
    live = [agent_pb2.Agent(account_id=capped.id, status=agent_pb2.AGENT_STATUS_RUNNING)]
    assert provider_choice.at_cap(capped, provider_choice.live_on(capped.id, live)) is not None
    assert provider_choice.at_cap(capped, 0) is None
    assert provider_choice.at_cap(_account("claude"), 50) is None


def test_without_a_fallback_the_task_waits_with_the_rest() -> None:
    waits = _choose(accounts=[_account("claude", rests_for=60)])
    assert isinstance(waits, Wait) and waits.reason.startswith("every account of claude is resting until")
    everyone = _choose(
        initiative=initiative_pb2.Initiative(fallback_providers=["codex", "unknown"]),
        accounts=[_account("claude", rests_for=60), _account("codex", rests_for=30)],
    )
    assert isinstance(everyone, Wait)
    assert "every account of codex is resting" in everyone.reason
    assert "unknown is not known" in everyone.reason and "(fallback providers: codex, unknown)" in everyone.reason


@given(
    resting=st.sets(st.sampled_from(KNOWN)),
    fallbacks=st.lists(st.sampled_from(KNOWN), unique=True),
    wanted=st.sampled_from(KNOWN),
)
def test_the_choice_is_the_first_provider_in_order_that_does_not_rest(
    resting: set[str], fallbacks: list[str], wanted: str
) -> None:
    accounts = [_account(name, rests_for=60 if name in resting else None) for name in KNOWN]
    chosen = _choose(task_pb2.Task(provider=wanted), initiative_pb2.Initiative(fallback_providers=fallbacks), accounts)
    order = list(dict.fromkeys([wanted, *fallbacks]))
    free = [name for name in order if name not in resting]
    if free:
        assert isinstance(chosen, Choice) and chosen.provider == free[0] and chosen.wanted == wanted
        assert chosen.moved == (free[0] != wanted)
    else:
        assert isinstance(chosen, Wait)


def test_a_session_moved_to_another_provider_is_told_it_is_new_and_what_it_was_to_answer() -> None:
    earlier = agent_pb2.Agent(provider="claude", session_id="s")
    choice = Choice("codex", "claude", "every account of claude is resting until 2026-12-07 23:30:00 UTC")
    note = launches.moved_session_note(Continuation(earlier, {}), choice)
    assert "ran before on provider claude, whose session cannot be continued on codex" in note
    assert "every account of claude is resting until" in note and "on your branch" in note
    answered = launches.moved_session_note(Continuation(earlier, {"m1": "use PostgreSQL"}), choice)
    assert answered.startswith(note.rstrip("\n")) and "- m1: use PostgreSQL" in answered
