"""Claude Code's stream-json output read back: the transcripts in tests/fixtures/transcripts/ are
written in the real format (compact JSON, one event a line, the fields the CLI prints)."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_service.agents import stream_json
from orchestrator_service.agents.stream_json import Limit, parse_limit_message, summarize_file, summarize_lines
from tests.unit.claude_transcripts import LIMIT_RESETS, NOW, SESSION, TRANSCRIPTS


def read(name: str) -> stream_json.RunSummary:
    return summarize_file(TRANSCRIPTS / name, NOW)


def test_success_reports_its_session_and_final_text() -> None:
    run = read("success.jsonl")
    assert run.session_ids == (SESSION,) and run.session_id == SESSION
    assert run.result is not None and run.result.subtype == "success" and not run.result.is_error
    assert run.result.text == "Created app/schema.sql with the users table and committed it."
    assert run.succeeded and run.limit is None and not run.unknown_session


@pytest.mark.parametrize(
    ("name", "subtype", "text", "errors"),
    [
        ("error_max_turns.jsonl", "error_max_turns", "", ()),
        ("error_during_execution.jsonl", "error_during_execution", "", ("API Error: 500",)),
        ("error_result_text.jsonl", "success", "API Error: 400 The prompt is too long for this model.", ()),
    ],
)
def test_error_results(name: str, subtype: str, text: str, errors: tuple[str, ...]) -> None:
    run = read(name)
    assert run.result is not None and run.result.is_error and not run.succeeded
    assert run.result.subtype == subtype and run.result.text == text
    assert [error[: len(prefix)] for error, prefix in zip(run.result.errors, errors, strict=True)] == list(errors)
    assert run.limit is None


@pytest.mark.parametrize(("name", "reset"), LIMIT_RESETS)
def test_each_limit_form_with_its_reset(name: str, reset: datetime) -> None:
    run = read(name)
    assert run.limit is not None and run.limit.reset_at == reset
    assert not run.succeeded


def test_a_warning_alone_is_no_limit() -> None:
    warning = '{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1775206800}}'
    assert summarize_lines([warning.encode()], NOW).limit is None


def test_overage_in_use_is_no_limit_and_a_later_allowed_lifts_one() -> None:
    def event(status: str, **extra: object) -> bytes:
        info = {"status": status, "resetsAt": 1775206800, "rateLimitType": "five_hour", **extra}
        return json.dumps({"type": "rate_limit_event", "rate_limit_info": info}).encode()

    assert summarize_lines([event("rejected", isUsingOverage=True)], NOW).limit is None
    assert summarize_lines([event("rejected"), event("allowed")], NOW).limit is None
    assert summarize_lines([event("allowed"), event("rejected")], NOW).limit is not None


def test_a_spliced_line_is_mended() -> None:
    """The rate_limit_events written into the middle of an assistant line and of the result line:
    both events are read, and the result is whole again."""
    raw = (TRANSCRIPTS / "spliced_rate_limit_event.jsonl").read_text().splitlines()
    assert sum(1 for line in raw if _is_json(line)) < len(raw)  # the fixture really is broken
    run = read("spliced_rate_limit_event.jsonl")
    assert run.result is not None and run.result.text == "Renamed the column and updated both queries."
    assert run.session_id == SESSION and run.limit is None and run.last_plain_line == ""


def test_an_event_written_right_after_a_whole_line_loses_neither() -> None:
    init, *_, last = (TRANSCRIPTS / "success.jsonl").read_text().splitlines()
    denied = '{"type":"rate_limit_event","rate_limit_info":{"status":"denied","resetsAt":1775206800}}'
    run = summarize_lines([init.encode(), (last + denied).encode()], NOW)
    assert run.succeeded and run.limit is not None and run.session_id == SESSION


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_a_resumed_run_reports_its_new_session() -> None:
    run = read("resumed_new_session.jsonl")
    assert run.session_id == "b27e91d4-5c3a-4f18-8e6d-2a9f0c4b7e35" and run.succeeded


def test_an_unknown_session_and_a_refusal_are_plain_text() -> None:
    unknown = read("resume_unknown_session.jsonl")
    assert unknown.unknown_session and unknown.session_ids == () and unknown.result is None
    refused = read("root_refused.jsonl")
    assert not refused.unknown_session and "root/sudo" in refused.last_plain_line


def test_a_cut_short_run_has_no_result_and_its_fragment_is_not_plain_text() -> None:
    run = read("cut_short.jsonl")
    assert run.result is None and run.session_id == SESSION and run.last_plain_line == ""


def test_the_agents_own_words_never_count_as_a_limit() -> None:
    """An assistant quoting a limit message, and a successful result that mentions one."""
    quote = "You've hit your limit · resets 4pm (America/Los_Angeles)"
    assistant = {"type": "assistant", "message": {"content": [{"type": "text", "text": quote}]}}
    success = {"type": "result", "subtype": "success", "is_error": False, "result": f"Handled '{quote}'."}
    run = summarize_lines([json.dumps(assistant).encode(), json.dumps(success).encode()], NOW)
    assert run.limit is None and run.succeeded


def test_output_starts_at_the_run_offset(tmp_path: Path) -> None:
    """A resumed agent appends its runs to one file: only the latest run counts."""
    output = tmp_path / "output.jsonl"
    first = (TRANSCRIPTS / "success.jsonl").read_bytes()
    output.write_bytes(first + (TRANSCRIPTS / "resume_unknown_session.jsonl").read_bytes())
    later = summarize_file(output, NOW, start=len(first))
    assert later.unknown_session and later.result is None
    assert summarize_file(tmp_path / "missing.jsonl", NOW) == stream_json.RunSummary()


@pytest.mark.parametrize(
    ("text", "reset"),
    [
        ("You've hit your limit · resets 4pm (America/Los_Angeles)", datetime(2026, 4, 2, 23, 0, tzinfo=UTC)),
        # 11am in Los Angeles has passed today: the next one is tomorrow.
        ("You've hit your limit · resets 11am (America/Los_Angeles)", datetime(2026, 4, 3, 18, 0, tzinfo=UTC)),
        ("You\u2019ve hit your session limit · resets 4:20am (Europe/Warsaw)", datetime(2026, 4, 3, 2, 20, tzinfo=UTC)),
        ("Limit reached · resets 11:30am (Asia/Calcutta)", datetime(2026, 4, 3, 6, 0, tzinfo=UTC)),
        ("Weekly limit reached · resets Jan 2 at 7am (Europe/Paris)", datetime(2027, 1, 2, 6, 0, tzinfo=UTC)),
        ("5-hour limit reached ∙ resets 9pm", datetime(2026, 4, 2, 21, 0, tzinfo=UTC)),  # in now's zone
        (
            "Claude usage limit reached. Your limit will reset at 9pm (America/New_York).",
            datetime(2026, 4, 3, 1, 0, tzinfo=UTC),
        ),
        ("Claude AI usage limit reached|1775246400", datetime.fromtimestamp(1775246400, UTC)),
        ("Claude AI usage limit reached|1775246400000", datetime.fromtimestamp(1775246400, UTC)),
        ("API Error: Rate limit reached", None),
        ("You've hit your limit · resets 4pm (No/Such_Zone)", None),
    ],
)
def test_limit_messages(text: str, reset: datetime | None) -> None:
    limit = parse_limit_message(text, NOW)
    assert limit is not None and limit.reset_at == reset


@pytest.mark.parametrize(
    "text",
    ["Context limit reached · /compact or /clear to continue", "the limit reached its end", "Done.", ""],
)
def test_not_limit_messages(text: str) -> None:
    assert parse_limit_message(text, NOW) is None


def test_latest_reset_wins_across_evidence() -> None:
    lines = [
        b'{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1775206800}}',
        json.dumps({"type": "result", "is_error": True, "result": "Claude AI usage limit reached|1775246400"}).encode(),
    ]
    limit = summarize_lines(lines, NOW).limit
    assert isinstance(limit, Limit) and limit.reset_at == datetime.fromtimestamp(1775246400, UTC)


def test_ten_megabytes_are_read_in_bounded_memory(tmp_path: Path) -> None:
    output = tmp_path / "output.jsonl"
    line = (TRANSCRIPTS / "success.jsonl").read_bytes().splitlines()[2] + b"\n"
    with output.open("wb") as handle:
        handle.write((TRANSCRIPTS / "success.jsonl").read_bytes().splitlines()[0] + b"\n")
        for _ in range(11 * 1024 * 1024 // len(line)):
            handle.write(line)
        handle.write((TRANSCRIPTS / "success.jsonl").read_bytes().splitlines()[-1] + b"\n")
    assert output.stat().st_size > 10 * 1024 * 1024
    tracemalloc.start()
    try:
        run = summarize_file(output, NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.succeeded and run.session_id == SESSION
    assert peak < 2 * 1024 * 1024


def test_a_line_over_the_limit_is_skipped_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_json, "MAX_LINE_BYTES", 1000)
    huge = json.dumps({"type": "result", "is_error": True, "result": "x" * 5000}).encode()
    last = (TRANSCRIPTS / "success.jsonl").read_bytes().splitlines()[-1]
    run = summarize_lines(stream_json.read_lines(io.BytesIO(huge + b"\n" + last + b"\n")), NOW)
    assert run.succeeded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    run = summarize_lines(stream_json.read_lines(io.BytesIO(data)), NOW)
    assert isinstance(run, stream_json.RunSummary)


EVENTISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["system", "result", "rate_limit_event", "assistant", "other"]),
    st.dictionaries(
        st.sampled_from(["subtype", "is_error", "result", "session_id", "errors", "rate_limit_info"]), EVENTISH
    ),
)
def test_events_of_any_shape_never_raise(kind: str, fields: dict[str, object]) -> None:
    line = json.dumps({"type": kind, **fields}).encode()
    assert isinstance(summarize_lines([line, line[: len(line) // 2]], NOW), stream_json.RunSummary)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.integers(), st.floats(), st.just(10**400), st.text(max_size=5), st.none()),
    st.text(max_size=12),
)
def test_any_reset_and_status_never_raise(resets_at: object, status: str) -> None:
    info = {"status": status, "resetsAt": resets_at}
    lines = [json.dumps({"type": "rate_limit_event", "rate_limit_info": info}).encode()]
    lines.append(
        json.dumps(
            {"type": "result", "is_error": True, "result": f"Claude AI usage limit reached|{resets_at}"}
        ).encode()
    )
    assert isinstance(summarize_lines(lines, NOW), stream_json.RunSummary)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_rate_limit_event_spliced_anywhere_is_read_and_the_line_mended(data: st.DataObject) -> None:
    lines = (TRANSCRIPTS / "success.jsonl").read_text().splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[index])))
    denied = '{"type":"rate_limit_event","rate_limit_info":{"status":"denied","resetsAt":1775206800}}'
    lines[index] = lines[index][:cut] + denied + "\n" + lines[index][cut:]
    run = summarize_lines([line.encode() for line in "\n".join(lines).split("\n")], NOW)
    assert run.limit is not None and run.limit.reset_at == datetime.fromtimestamp(1775206800, UTC)
    assert run.result is not None and run.result.text.startswith("Created app/schema.sql")
    assert run.session_id == SESSION


def test_a_2_1_328_transcript_is_read() -> None:
    """Recorded from 2.1.328 against tests/fixtures/fake_anthropic.py: its result line starts with
    `{"duration_api_ms":`, not with "type"."""
    last = (TRANSCRIPTS / "v2_1_328_success.jsonl").read_text().splitlines()[-1]
    assert not last.startswith('{"type"')
    run = read("v2_1_328_success.jsonl")
    assert run.succeeded and run.result is not None and run.result.text == "all done"
    assert run.session_id == json.loads(last)["session_id"] and run.limit is None


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_2_1_328_result_spliced_into_any_line_is_read_whatever_its_key_order(data: st.DataObject) -> None:
    """The line repair looked for `{"type":` only and missed a 2.1.328 result written into the
    middle of another event's line, as Claude Code 2.1.328 wrote it; any key order is found now."""
    *lines, result = (TRANSCRIPTS / "v2_1_328_success.jsonl").read_text().splitlines()
    index = data.draw(st.integers(1, len(lines) - 1))
    cut = data.draw(st.integers(1, len(lines[index]) - 1))
    lines[index] = lines[index][:cut] + result + "\n" + lines[index][cut:]
    run = summarize_lines([line.encode() for line in "\n".join(lines).split("\n")], NOW)
    assert run.succeeded and run.result is not None and run.result.text == "all done"
    assert run.last_plain_line == ""


def test_a_refused_credential_names_its_status() -> None:
    for name, text in (
        ("invalid_api_key.jsonl", "Invalid API key · Fix external API key"),
        ("not_logged_in.jsonl", "Not logged in · Please run /login"),
        ("v2_1_328_invalid_api_key.jsonl", "Invalid API key · Fix external API key"),
    ):
        run = read(name)
        assert run.result is not None and run.result.is_error and run.result.api_error_status == 401
        assert run.result.text == text and run.limit is None


def test_a_recorded_session_limit_rests_until_the_events_reset() -> None:
    """Recorded from 2.1.197 given a 429 with the unified rate-limit headers (fake_anthropic.py):
    a rejected rate_limit_event with resetsAt, then `You've hit your session limit · resets ...`."""
    lines = (TRANSCRIPTS / "session_limit_recorded.jsonl").read_text().splitlines()
    [event] = [json.loads(line) for line in lines if '"rate_limit_event"' in line]
    run = read("session_limit_recorded.jsonl")
    assert run.limit is not None and not run.succeeded
    assert run.limit.reset_at == datetime.fromtimestamp(event["rate_limit_info"]["resetsAt"], UTC)
    assert "You've hit your session limit" in run.limit.evidence
    assert run.result is not None and run.result.api_error_status == 429
