"""Gemini CLI's stream-json output read back (clis/gemini.py) and its usage (usage.py): the
transcripts tests/fixtures/transcripts/gemini_*.jsonl are the real CLI's (0.61.0) output against
tests/fake_gemini.py, recorded by tests/record_gemini.py; the usage each fake reply reported is
written next to each test."""

from __future__ import annotations

import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_service.agents import stream_json
from orchestrator_service.agents.clis import gemini
from orchestrator_service.agents.usage import Counts, Price, UsageReader, gemini_counts
from tests.unit.claude_transcripts import TRANSCRIPTS

SESSION = "5f0c6a53-3b1e-4d8e-9a51-0c2d7e9b4a11"
NOW = datetime(2026, 12, 7, 23, 45, tzinfo=UTC)


def read(name: str, start: int = 0) -> stream_json.RunSummary:
    return gemini.summarize_file(TRANSCRIPTS / f"gemini_{name}.jsonl", NOW, start)


def usage(name: str, starts: list[int] | None = None, prices: dict[str, Price] | None = None) -> Counts:
    return UsageReader().read(TRANSCRIPTS / f"gemini_{name}.jsonl", starts or [0], prices or {})


def test_success_reports_its_session_and_the_assistants_text() -> None:
    run = read("success")
    assert run.session_ids == (SESSION,)
    assert run.result == stream_json.FinalResult("success", False, "All done: nothing to change.")
    assert run.succeeded and run.limit is None and not run.unknown_session


def test_a_run_with_tools_answers_with_what_it_said_after_the_last_tool() -> None:
    run = read("tool_use")
    assert run.result is not None and run.result.text == "Wrote hello.txt and staged it."
    assert run.succeeded and run.session_id == SESSION


def test_usage_is_what_the_api_reported_thinking_counted_as_output() -> None:
    # The fake: prompt 1234, candidates 56, cached 200, thoughts 7.
    assert usage("success") == Counts(1234, 63, 200, 0)
    # Three replies: prompts 1000 + 1100 + 1200, candidates 20 + 15 + 9, thoughts 3, cached 800 + 1000.
    assert usage("tool_use") == Counts(3300, 47, 1800, 0)


def test_a_price_table_prices_each_model_of_the_run() -> None:
    price = Price(input=1.0, output=10.0, cache_read=0.5)
    counts = usage("success", prices={"gemini-2.5-pro": price})
    assert counts.cost_usd == pytest.approx((1234 * 1.0 + 63 * 10.0 + 200 * 0.5) / 1e6)
    assert usage("success", prices={"other-model": price}).cost_usd == 0.0


def test_a_resumed_run_keeps_its_session_and_counts_only_its_own_usage() -> None:
    path = TRANSCRIPTS / "gemini_resume.jsonl"
    text = path.read_bytes()
    second = text.index(b'{"type":"init"', 1)
    first, resumed = read("resume"), read("resume", second)
    assert first.result is not None and resumed.result is not None
    assert resumed.session_ids == (SESSION,) and resumed.result.text == "Named it answer.txt."
    # Replies: prompt 300, candidates 30, cached 100; then 500, 40, 250.
    assert usage("resume", [0, second]) == Counts(800, 70, 350, 0)
    assert UsageReader().read(path, [0], {}) == Counts(800, 70, 350, 0)


def test_an_unknown_session_on_resume() -> None:
    run = read("unknown_session")
    assert run.unknown_session and run.result is None and run.session_ids == ()


def test_a_daily_quota_rests_until_the_delay_the_api_named() -> None:
    run = read("rate_limit_daily")
    assert run.limit is not None and run.result is not None and run.result.is_error
    # The result at 23:32:18.396; the API's RetryInfo said 3600s (in the CLI's report on stderr).
    assert run.limit.reset_at == datetime(2026, 12, 7, 23, 32, 18, 396000, tzinfo=UTC) + timedelta(seconds=3600)
    assert "exhausted your daily quota" in run.limit.evidence
    assert run.result.api_error_status == gemini.QUOTA_STATUS


def test_a_per_minute_quota_the_cli_retried_names_its_delay() -> None:
    run = read("rate_limit_retry")
    assert run.limit is not None
    assert run.limit.reset_at == datetime(2026, 12, 7, 23, 32, 37, 227000, tzinfo=UTC) + timedelta(seconds=2)


@pytest.mark.parametrize("name", ["bad_key", "unauthorized", "forbidden"])
def test_a_refused_key_reads_as_a_refused_credential(name: str) -> None:
    run = read(name)
    assert run.result is not None and run.result.is_error
    assert run.result.api_error_status == gemini.REFUSED_CREDENTIAL
    assert run.limit is None and not run.succeeded and run.session_id == SESSION
    assert run.result.text.startswith("Gemini API: ") and "{" not in run.result.text


def test_a_refused_keys_reason_is_the_apis_own_words() -> None:
    run = read("bad_key")
    assert run.result is not None
    assert run.result.text == "Gemini API: API key not valid. Please pass a valid API key. (INVALID_ARGUMENT)"
    assert gemini.readable("[API Error: {not json}]") == "[API Error: {not json}]"
    assert gemini.readable('[API Error: {"error": []}]') == '[API Error: {"error": []}]'


def test_errors_usage_is_zero_not_absent() -> None:
    assert usage("rate_limit_daily") == Counts()


def test_the_models_words_never_count_as_a_limit_or_a_lost_session() -> None:
    said = "You have exhausted your daily quota. Please retry in 3600s. Error resuming session: x"
    lines = [
        json.dumps({"type": "init", "session_id": "s"}),
        json.dumps({"type": "message", "role": "assistant", "content": said, "delta": True}),
        json.dumps({"type": "result", "status": "success", "stats": {}}),
    ]
    run = gemini.summarize_lines([line.encode() + b"\n" for line in lines], NOW)
    assert run.limit is None and not run.unknown_session and run.succeeded


def test_a_quota_error_then_success_is_no_limit() -> None:
    lines = [
        b"Attempt 1 failed: You exceeded your current quota. Please retry in 2s.\n",
        json.dumps({"type": "result", "status": "success", "stats": {}}).encode(),
    ]
    assert gemini.summarize_lines(lines, NOW).limit is None


def test_output_starts_at_the_run_offset(tmp_path: Path) -> None:
    earlier = (TRANSCRIPTS / "gemini_success.jsonl").read_bytes()
    output = tmp_path / "output"
    output.write_bytes(earlier + (TRANSCRIPTS / "gemini_unknown_session.jsonl").read_bytes())
    assert gemini.summarize_file(output, NOW, len(earlier)).unknown_session
    assert gemini.summarize_file(output, NOW).unknown_session
    assert gemini.summarize_file(tmp_path / "missing", NOW) == stream_json.RunSummary()


def test_the_answer_is_bounded() -> None:
    piece = json.dumps({"type": "message", "role": "assistant", "content": "x" * 100_000, "delta": True})
    lines = [piece.encode()] * 10 + [json.dumps({"type": "result", "status": "success"}).encode()]
    run = gemini.summarize_lines(lines, NOW)
    assert run.result is not None and len(run.result.text) == gemini.MAX_ANSWER_CHARS


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ('[API Error: {"error":{"code":401,"message":"x","status":"UNAUTHENTICATED"}}]', 401),
        ('[API Error: {"error":{"code":403,"message":"x","status":"PERMISSION_DENIED"}}]', 401),
        ('[API Error: {"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}]', 401),
        ('[API Error: {"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}]', 400),
        ('[API Error: {"error":{"code":500,"message":"internal","status":"INTERNAL"}}]', 500),
        ("[API Error: You have exhausted your daily quota on this model.]", 429),
        ("Reached max session turns for this session.", None),
    ],
)
def test_api_status_of_error_messages(message: str, status: int | None) -> None:
    assert gemini.api_status(message) == status


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Please retry in 3600s.", 3600.0),
        ("Please retry in 1.5s. Suggested retry after 20s.", 20.0),
        ("retry in 250ms", 0.25),
        ("retry in 99999999999s", None),
        ("retry soon", None),
    ],
)
def test_retry_delays(text: str, seconds: float | None) -> None:
    assert gemini.retry_seconds(text) == seconds


@pytest.mark.parametrize(
    ("stats", "counts"),
    [
        ({"input_tokens": 10, "output_tokens": 2, "cached": 3, "total_tokens": 12}, Counts(10, 2, 3, 0)),
        ({"input_tokens": 10, "output_tokens": 2, "total_tokens": 20}, Counts(10, 10, 0, 0)),
        ({"input_tokens": -1, "output_tokens": True, "cached": 1.5, "total_tokens": "9"}, Counts()),
        ({"input_tokens": 10**16}, Counts()),
        ("stats", None),
    ],
)
def test_gemini_counts(stats: object, counts: Counts | None) -> None:
    assert gemini_counts(stats) == counts


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    run = gemini.summarize_lines(stream_json.read_lines(io.BytesIO(data)), NOW)
    assert isinstance(run, stream_json.RunSummary)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([*gemini.Event, "other"]),
    st.dictionaries(
        st.sampled_from(
            ["session_id", "role", "content", "delta", "status", "error", "stats", "timestamp", "severity", "message"]
        ),
        _JSON,
    ),
)
def test_events_of_any_shape_never_raise(kind: str, fields: dict[str, object]) -> None:
    line = json.dumps({"type": kind, **fields}).encode()
    gemini.summarize_lines([line, line], NOW)
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "output"
        output.write_bytes(line + b"\n")
        UsageReader().read(output, [0], {"gemini-2.5-pro": Price(1, 1, 1, 1)})


def test_a_result_far_in_the_future_never_overflows() -> None:
    line = json.dumps(
        {
            "type": "result",
            "timestamp": "9999-12-31T23:59:59Z",
            "status": "error",
            "error": {"message": "exhausted your daily quota. Please retry in 31536000s"},
        }
    )
    run = gemini.summarize_lines([line.encode()], NOW)
    assert run.limit is not None and run.limit.reset_at is None
