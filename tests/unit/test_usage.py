"""Reading usage from an agent's output (agents/usage.py) and the budget decisions
(controllers/agent_runs/usage.py): Claude Code's lines as it prints them, runs cut short, hostile numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cw.store.v1 import agent_pb2
from orchestrator_service.agents import usage as usage_module
from orchestrator_service.agents.usage import MAX_LINE_BYTES, Counts, Price, UsageReader, parse_prices
from orchestrator_service.controllers.agent_runs.usage import spent


def _assistant(message_id: str, model: str = "m", **usage: object) -> str:
    message = {"id": message_id, "model": model, "content": [], "usage": usage}
    return json.dumps({"type": "assistant", "message": message}) + "\n"


def _result(cost: object = None, **usage: object) -> str:
    line: dict[str, object] = {"type": "result", "subtype": "success", "usage": usage}
    if cost is not None:
        line["total_cost_usd"] = cost
    return json.dumps(line) + "\n"


def _write(path: Path, *lines: str) -> None:
    with path.open("a") as handle:
        handle.write("".join(lines))


def test_turns_count_as_they_come_and_the_result_replaces_them(tmp_path: Path) -> None:
    output, reader = tmp_path / "output.jsonl", UsageReader()
    _write(output, '{"type": "system"}\n', _assistant("a", input_tokens=10, output_tokens=1))
    assert reader.read(output, [0], {}) == Counts(10, 1)
    # The same message again (another content block): its last usage counts, once.
    _write(output, _assistant("a", input_tokens=10, output_tokens=5, cache_creation_input_tokens=7))
    _write(output, _assistant("b", input_tokens=3, output_tokens=2, cache_read_input_tokens=100))
    assert reader.read(output, [0], {}) == Counts(13, 7, 100, 7)
    _write(output, _result(0.5, input_tokens=20, output_tokens=8, cache_read_input_tokens=100))
    assert reader.read(output, [0], {}) == Counts(20, 8, 100, 0, 0.5)


def test_a_run_stopped_midway_keeps_its_turns_when_the_next_run_reports_its_own(tmp_path: Path) -> None:
    output, reader = tmp_path / "output.jsonl", UsageReader()
    _write(output, _assistant("a", input_tokens=10, output_tokens=1))
    second_run = output.stat().st_size
    _write(output, _assistant("b", input_tokens=4, output_tokens=4), _result(input_tokens=5, output_tokens=6))
    assert reader.read(output, [0, second_run], {}) == Counts(15, 7)
    # Read again from the start (a restarted orchestrator): the same.
    assert UsageReader().read(output, [0, second_run], {}) == Counts(15, 7)


def test_cost_from_the_price_table_when_the_cli_reports_none(tmp_path: Path) -> None:
    output = tmp_path / "output.jsonl"
    _write(output, _assistant("a", "big", input_tokens=1_000_000, output_tokens=500_000))
    prices = {"big": Price(input=3.0, output=15.0)}
    assert UsageReader().read(output, [0], prices).cost_usd == pytest.approx(10.5)
    _write(output, _result(input_tokens=2_000_000, output_tokens=0))
    assert UsageReader().read(output, [0], prices).cost_usd == pytest.approx(6.0)


def test_hostile_numbers_and_lines_count_as_nothing(tmp_path: Path) -> None:
    output = tmp_path / "output.jsonl"
    _write(
        output,
        _assistant("a", input_tokens=-5, output_tokens="9", cache_read_input_tokens=10**30),
        _assistant("b", input_tokens=True, output_tokens=2.5),
        '{"type": "assistant", "message": {"usage": [1, 2]}}\n',
        'not json but has "usage"\n',
        '{"type": "result", "usage": {"input_tokens": 1}, "total_cost_usd": NaN}\n',
    )
    assert UsageReader().read(output, [0], {}) == Counts(1)
    long_line = '{"type": "assistant", "usage": "' + "x" * (MAX_LINE_BYTES + 10) + '"}\n'
    _write(output, long_line, _result(input_tokens=4))
    assert UsageReader().read(output, [0], {}) == Counts(5)


def test_a_line_still_being_written_waits(tmp_path: Path) -> None:
    output, reader = tmp_path / "output.jsonl", UsageReader()
    line = _assistant("a", input_tokens=10)
    _write(output, line[:20])
    assert reader.read(output, [0], {}) == Counts()
    _write(output, line[20:])
    assert reader.read(output, [0], {}) == Counts(10)


def test_price_tables_are_checked() -> None:
    assert parse_prices('{"m": {"input": 3, "output": 15}}') == {"m": Price(3.0, 15.0)}
    for bad in ("[]", '{"m": {"input": -1}}', '{"m": {"inputs": 1}}', '{"m": {"input": "1"}}'):
        with pytest.raises(ValueError):
            parse_prices(bad)


def test_budgets_count_input_output_and_cache_writes() -> None:
    used = agent_pb2.Usage(input_tokens=10, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=5, cost_usd=1)
    assert spent(used, 35, None, "the task's") is None
    passed = spent(used, 34, None, "the task's")
    assert passed is not None and passed.reason == "the task's budget is spent: 35 tokens used of 34"
    assert spent(used, None, 1.0, "x") is None
    assert spent(used, None, 0.5, "x") is not None
    assert spent(used, None, None, "x") is None


def test_codex_threads_report_their_totals_so_far(tmp_path: Path) -> None:
    output = tmp_path / "output.jsonl"

    def turn(input_tokens: int, cached: int, out: int) -> str:
        usage = {"input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": out}
        return json.dumps({"type": "turn.completed", "usage": usage}) + "\n"

    started = '{"type": "thread.started", "thread_id": "%s"}\n'
    _write(output, started % "t1", '{"type": "turn.started"}\n', turn(100, 20, 30))
    resumed = output.stat().st_size
    _write(output, started % "t1", turn(250, 50, 45))  # the same thread resumed: its total so far
    new_thread = output.stat().st_size
    _write(output, started % "t2", turn(10, 0, 1))  # a new session: counted besides
    assert UsageReader().read(output, [0, resumed, new_thread], {}) == Counts(260, 46, 50, 0)


def test_memory_stays_bounded_whatever_ids_an_agent_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_module, "MAX_MESSAGES", 3)
    monkeypatch.setattr(usage_module, "MAX_THREADS", 2)
    output = tmp_path / "output.jsonl"
    _write(output, *(_assistant(f"m{number}", input_tokens=1) for number in range(10)))
    _write(output, _assistant("m9", input_tokens=1))  # past the cap: added again, never lost
    reader = UsageReader()
    assert reader.read(output, [0], {}) == Counts(11)
    assert len(reader.run.messages) == 3
    for thread in ("a", "b", "c"):
        usage = {"input_tokens": 5, "output_tokens": 0}
        _write(output, json.dumps({"type": "thread.started", "thread_id": thread}) + "\n")
        _write(output, json.dumps({"type": "turn.completed", "usage": usage}) + "\n")
    assert reader.read(output, [0], {}) == Counts(21) and set(reader.codex_threads) == {"a", "b"}


TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


def test_a_claude_code_transcript_counts_its_result() -> None:
    """tests/fixtures/transcripts/success.jsonl, as Claude Code prints it: four turns, then the
    result's summed usage and cost, which is what counts."""
    used = UsageReader().read(TRANSCRIPTS / "success.jsonl", [0], {})
    assert used == Counts(31, 1873, 88211, 9120, 0.18342)
