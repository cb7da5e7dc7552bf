"""OpenCode's `run --format json` output read back: the transcripts are the real CLI's (1.18.33,
recorded offline against the fake Anthropic API by tests/fixtures/record_opencode.py, which names
the counts the fake reported)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_service.agents import claude_outcome, stream_json
from orchestrator_service.agents.clis import opencode
from orchestrator_service.agents.usage import Counts, UsageReader, opencode_step_counts
from tests.fixtures import record_opencode

TRANSCRIPTS = Path(__file__).parents[1] / "fixtures" / "transcripts"
NOW = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)


def lines(name: str) -> list[bytes]:
    return (TRANSCRIPTS / f"opencode_{name}.jsonl").read_bytes().splitlines(keepends=True)


def read(name: str) -> opencode.Reader:
    return opencode.read(lines(name), NOW)


def session_of(name: str) -> str:
    first = json.loads(lines(name)[0])
    assert isinstance(first["sessionID"], str) and first["sessionID"].startswith("ses_")
    return first["sessionID"]


def test_success_reports_its_session_final_text_and_exact_usage() -> None:
    reader = read("success")
    run = reader.summary()
    assert run.session_id == session_of("success") and run.succeeded
    assert run.result is not None and run.result.text == record_opencode.SUCCESS.text
    assert run.limit is None and not run.unknown_session
    reply = record_opencode.SUCCESS
    expected = (reply.input_tokens, reply.output_tokens, reply.cache_read_tokens, reply.cache_write_tokens)
    usage = reader.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == expected
    assert usage.cost_usd == pytest.approx(0.00066885)  # OpenCode's own price for the model


def test_tool_use_steps_sum_and_the_last_step_says_the_result() -> None:
    reader = read("tool_use")
    run = reader.summary()
    assert run.succeeded and run.result is not None and run.result.text == "Wrote hello.txt."
    # The three scripted replies: (11, 3), (13, 12), (17, 5, cache read 2).
    usage = reader.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        41,
        20,
        2,
        0,
    )
    assert usage.cost_usd == pytest.approx(0.000078 + 0.000219 + 0.0001266)
    tools = [json.loads(line)["part"]["tool"] for line in lines("tool_use") if b'"tool_use"' in line]
    assert tools == ["write", "bash"]


def test_a_resumed_run_keeps_the_session() -> None:
    run = read("resume").summary()
    assert run.session_id == session_of("success") and run.succeeded
    assert run.result is not None and run.result.text == "Resumed."


def test_an_unknown_session_is_said_in_plain_text() -> None:
    run = read("unknown_session").summary()
    assert run.unknown_session and run.result is None and run.session_ids == ()
    assert run.last_plain_line == "Error: Session not found"  # colours taken out


def test_a_429_is_a_limit_until_the_reset_the_api_named() -> None:
    run = read("rate_limit").summary()
    assert run.result is not None and run.result.is_error and run.result.api_error_status == 429
    assert run.limit is not None
    assert run.limit.reset_at == datetime.fromtimestamp(record_opencode.RESET_EPOCH, UTC)
    assert run.session_id == session_of("rate_limit")


def test_a_refused_key_is_a_401_and_no_limit() -> None:
    run = read("bad_key").summary()
    assert run.result is not None and run.result.is_error and run.result.api_error_status == 401
    assert run.result.text == "invalid x-api-key" and run.result.subtype == "APIError" and run.limit is None


def error_line(status: int, headers: dict[str, object], timestamp: int = 1_796_684_400_000) -> bytes:
    error = {"name": "APIError", "data": {"message": "Too many", "statusCode": status, "responseHeaders": headers}}
    return json.dumps({"type": "error", "timestamp": timestamp, "sessionID": "ses_x", "error": error}).encode()


@pytest.mark.parametrize(
    ("headers", "reset"),
    [
        ({"retry-after": "120"}, datetime(2026, 12, 7, 23, 2, tzinfo=UTC)),
        ({"retry-after-ms": "1500"}, datetime(2026, 12, 7, 23, 0, 1, 500_000, tzinfo=UTC)),
        ({"retry-after": "Tue, 08 Dec 2026 01:00:00 GMT"}, datetime(2026, 12, 8, 1, tzinfo=UTC)),
        ({"retry-after": "60", "anthropic-ratelimit-unified-reset": "1796688000"}, datetime(2026, 12, 8, tzinfo=UTC)),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_a_429_rests_until_the_latest_reset_its_headers_name(headers: dict[str, object], reset: datetime) -> None:
    run = opencode.summarize_lines([error_line(429, headers)], NOW)
    assert run.limit is not None and run.limit.reset_at == reset


def test_text_after_an_error_does_not_make_the_run_a_success() -> None:
    run = opencode.summarize_lines([*lines("success"), error_line(500, {})], NOW)
    assert run.result is not None and run.result.is_error and run.limit is None


def test_a_run_cut_short_mid_work_has_no_result_but_its_usage() -> None:
    reader = opencode.read(lines("tool_use")[:3], NOW)  # step_start, the write, its step_finish
    assert reader.summary().result is None and reader.usage.input_tokens == 11


def test_the_agents_own_words_are_no_limit_nor_lost_session() -> None:
    said = {
        "type": "text",
        "sessionID": "ses_x",
        "part": {"messageID": "m", "text": "Session not found; limit reached"},
    }
    finish = {"type": "step_finish", "sessionID": "ses_x", "part": {"messageID": "m", "reason": "stop"}}
    run = opencode.summarize_lines([json.dumps(said).encode(), json.dumps(finish).encode()], NOW)
    assert run.succeeded and run.limit is None and not run.unknown_session


def test_hostile_counts_count_as_absent() -> None:
    tokens = {"input": -1, "output": True, "reasoning": 10**30, "cache": {"read": "7", "write": 3.5}}
    event = {"type": "step_finish", "part": {"tokens": tokens, "cost": float("nan")}}
    assert opencode_step_counts(event) == Counts()
    assert opencode_step_counts({"type": "step_finish", "part": {"tokens": {"cache": []}}}) == Counts()
    assert opencode_step_counts({"type": "text", "part": {"tokens": {}}}) is None


def test_a_line_past_the_cap_is_skipped_whole() -> None:
    huge = b'{"type":"text","part":{"text":"' + b"x" * (stream_json.MAX_LINE_BYTES + 10) + b'"}}\n'
    data = io.BytesIO(huge + b"".join(lines("success")))
    run = opencode.summarize_lines(stream_json.read_lines(data), NOW)
    assert run.succeeded and run.result is not None and run.result.text == record_opencode.SUCCESS.text


def test_a_missing_output_file_said_nothing(tmp_path: Path) -> None:
    assert opencode.summarize_file(tmp_path / "absent", NOW) == stream_json.RunSummary()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    reader = opencode.read(stream_json.read_lines(io.BytesIO(data)), NOW)
    assert isinstance(reader.summary(), stream_json.RunSummary) and isinstance(reader.usage, Counts)


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = [
    "sessionID",
    "timestamp",
    "part",
    "error",
    "reason",
    "tokens",
    "cache",
    "data",
    "statusCode",
    "responseHeaders",
    "messageID",
    "text",
    "message",
    "retry-after",
    "cost",
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["step_start", "text", "tool_use", "step_finish", "error", "other"]),
    st.dictionaries(st.sampled_from(FIELDS), ANY_JSON | st.dictionaries(st.sampled_from(FIELDS), ANY_JSON)),
)
def test_events_of_any_shape_never_raise(kind: str, fields: dict[str, object]) -> None:
    line = json.dumps({"type": kind, **fields}).encode()
    reader = opencode.read([line, line], NOW)
    assert isinstance(reader.summary(), stream_json.RunSummary) and isinstance(reader.usage, Counts)


def test_an_agents_usage_sums_its_runs_steps_with_the_costs_opencode_reported(tmp_path: Path) -> None:
    """usage.py reads the agent's output file, its runs one after the other (the resumed run at
    the offset the shim recorded)."""
    output = tmp_path / "output"
    first = b"".join(lines("success"))
    output.write_bytes(first + b"".join(lines("resume")))
    total = UsageReader().read(output, [0, len(first)], {})
    reply, resumed = record_opencode.SUCCESS, record_opencode.RESUMED
    assert (total.input_tokens, total.output_tokens) == (
        reply.input_tokens + resumed.input_tokens,
        reply.output_tokens + resumed.output_tokens,
    )
    assert (total.cache_read_tokens, total.cache_write_tokens) == (reply.cache_read_tokens, reply.cache_write_tokens)
    assert total.cost_usd == pytest.approx(0.00066885 + 0.000153)


def test_an_agents_usage_counts_a_step_once_however_often_it_is_read(tmp_path: Path) -> None:
    output = tmp_path / "output"
    data = b"".join(lines("tool_use"))
    output.write_bytes(data[:-40])
    reader = UsageReader()
    reader.read(output, [0], {})
    output.write_bytes(data)
    assert reader.read(output, [0], {}).input_tokens == 41


@pytest.mark.parametrize(
    ("name", "exit_code", "kind", "detail"),
    [
        ("success", 0, "done", record_opencode.SUCCESS.text),
        ("tool_use", 0, "done", "Wrote hello.txt."),
        ("rate_limit", 1, "rate_limited", "API error 429: Rate limited"),
        ("bad_key", 1, "credentials_refused", "APIError: invalid x-api-key"),
        ("unknown_session", 1, "error", "OpenCode has no conversation with that session id: start a new session"),
    ],
)
def test_each_recorded_run_means_what_it_means_for_claude_code(
    name: str, exit_code: int, kind: str, detail: str
) -> None:
    """The same policy as Claude Code's runs (claude_outcome.py), on OpenCode's real output; the
    rate-limited run's rest lasts until the reset its headers named."""
    run = read(name).summary()
    outcome = claude_outcome.claude_outcome(exit_code, None, run, NOW, opencode.OpenCode.label)
    assert outcome.kind == kind and (outcome.summary or outcome.error) == detail
    assert outcome.unknown_session == (name == "unknown_session")
    assert outcome.session_id == run.session_id
    if kind == "rate_limited":
        reset = datetime.fromtimestamp(record_opencode.RESET_EPOCH, UTC)
        assert outcome.retry_after_seconds == (reset - NOW).total_seconds()
