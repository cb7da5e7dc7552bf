"""What a Claude Code run said, read back from its `--output-format stream-json` output.

Claude Code knows nothing of cw's signal file: the facts cw needs are in its output. The `system`
`init` and `result` events name the session (a resumed run keeps its session id); the final `result`
event holds the answer (`subtype`, `is_error`, `result` text); an exhausted account shows as a
`rate_limit_event` whose status is not allowed, or as a limit message (`You've hit your limit ·
resets 4pm (America/Los_Angeles)`, `Claude AI usage limit reached|<epoch>`, ...) in an error result
or in plain text the CLI printed; resuming a session the CLI does not know prints `No conversation
found with session ID`.

The output is the agent's whole stdout and stderr, so it can be large, cut short, or hold anything:
it is read line by line (memory bounded by MAX_LINE_BYTES), lines that are not JSON are looked at as
plain text, unknown event types are ignored, and nothing here raises on any input. One version of
the CLI wrote a `rate_limit_event` into the middle of another event's line; such a line is mended,
whatever the order of the spliced event's keys (2.1.328 writes a result's "type" late).

Limit messages count only where the CLI speaks (an error result, a plain line), never in the
agent's own words (assistant events), which may quote them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from zoneinfo import ZoneInfo

from orchestrator_service.agents import control_files

# Longer lines (a huge tool result) are skipped: nothing cw needs is ever that long.
MAX_LINE_BYTES = 8 * 1024 * 1024
# How much of a plain line is kept to explain a crash.
PLAIN_LINE_KEEP = 500
# How many object openings (`{"`) a broken line is searched for, from its end: a spliced event's
# nested objects come first (a 2.1.328 result holds 13), then its own opening.
MAX_SALVAGE_TRIES = 64

EVENT_TYPES = frozenset({"system", "assistant", "user", "result", "rate_limit_event", "stream_event"})
ALLOWED_STATUSES = frozenset({"allowed", "allowed_warning"})
OVERAGE_ALLOWED = frozenset({"allowed", "allowed_warning"})

# Any object's opening, whatever its first key: 2.1.328's result lines start with
# `{"duration_api_ms":`, their "type" far inside (tests/fixtures/transcripts/v2_1_328_success.jsonl).
_OBJECT_OPENING = re.compile(r'\{\s*"')
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_UNKNOWN_SESSION = re.compile(r"No conversation found with session ID", re.IGNORECASE)
_EPOCH_LIMIT = re.compile(r"Claude AI usage limit reached\s*\|\s*(?P<epoch>\d{9,13})(?!\d)", re.IGNORECASE)
# "You've hit your (session) limit", "Limit reached", "Weekly limit reached", "5-hour limit reached",
# "Claude usage limit reached", "API Error: Rate limit reached"; never "Context limit reached".
_LIMIT_PHRASE = re.compile(
    r"(?<![\w-])(?<![\w-] )(?:you[\u2019']ve hit your (?:[\w-]+ )?limit|"
    r"(?:(?:claude (?:ai )?)?usage |(?:opus |sonnet )?weekly |session |5-hour |five-hour |daily |rate )?"
    r"limit reached)",
    re.IGNORECASE,
)
_RESET_CLAUSE = re.compile(
    r"^\s*(?:[·∙•|,.;:\-\u2013\u2014]\s*)?(?:your limit will )?resets?\s+(?:at\s+|on\s+)?"
    r"(?:(?P<month>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>am|pm)?\b"
    r"(?:\s*\((?P<zone>[A-Za-z0-9_+\-/]+)\))?",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}


@dataclass(frozen=True)
class FinalResult:
    """The run's last `result` event."""

    subtype: str
    is_error: bool
    text: str
    errors: tuple[str, ...] = ()
    session_id: str = ""
    # The HTTP status of the API's refusal that ended the run (401: the credential), else None.
    api_error_status: int | None = None


@dataclass(frozen=True)
class Limit:
    """The account hit a usage limit; `reset_at` (UTC) is None when nothing said when it lifts."""

    reset_at: datetime | None
    evidence: str


@dataclass(frozen=True)
class RunSummary:
    session_ids: tuple[str, ...] = ()
    result: FinalResult | None = None
    limit: Limit | None = None
    unknown_session: bool = False
    last_plain_line: str = ""

    @property
    def session_id(self) -> str:
        """The session the CLI reported last: the one to resume."""
        return self.session_ids[-1] if self.session_ids else ""

    @property
    def succeeded(self) -> bool:
        return self.result is not None and not self.result.is_error


# ---- limit messages ---------------------------------------------------------------------------


def parse_limit_message(text: str, now: datetime) -> Limit | None:
    """A limit named in `text`, with its reset time: an epoch after `|`, or a wall-clock time in
    the named IANA zone (in `now`'s zone when none is named), the next such time after `now`."""
    epoch = _EPOCH_LIMIT.search(text)
    if epoch:
        return Limit(_from_epoch(int(epoch.group("epoch"))), epoch.group(0))
    phrase = _LIMIT_PHRASE.search(text)
    if phrase is None:
        return None
    line_end = text.find("\n", phrase.end())
    rest = text[phrase.end() : line_end if line_end >= 0 else len(text)]
    clause = _RESET_CLAUSE.match(rest)
    evidence = (text[phrase.start() : phrase.end()] + rest).strip()
    if clause is None:
        return Limit(None, evidence)
    return Limit(_wall_clock(clause, now), evidence)


def _from_epoch(value: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)  # > 1e11: milliseconds
    except (OverflowError, OSError, ValueError):
        return None


def _zone(name: str | None, now: datetime) -> tzinfo | None:
    if not name:
        return now.tzinfo or UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None


def _wall_clock(clause: re.Match[str], now: datetime) -> datetime | None:
    zone = _zone(clause.group("zone"), now)
    hour, minute, half = int(clause.group("hour")), int(clause.group("minute") or 0), clause.group("half")
    if zone is None or (half and not 1 <= hour <= 12):
        return None
    if half:
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    try:
        local_now = now.astimezone(zone)
        at = time(hour, minute)
        if clause.group("month"):
            month = _MONTHS.get(clause.group("month").lower())
            if month is None:
                return None
            reset = datetime.combine(date(local_now.year, month, int(clause.group("day"))), at, zone)
            if reset < local_now - timedelta(days=1):
                reset = reset.replace(year=local_now.year + 1)
        else:
            reset = datetime.combine(local_now.date(), at, zone)
            if reset <= local_now:
                reset = datetime.combine(local_now.date() + timedelta(days=1), at, zone)
        return reset.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# ---- reading the stream -----------------------------------------------------------------------


@dataclass
class _Window:
    blocked: bool
    reset_at: datetime | None


@dataclass
class StreamReader:
    """Folds a run's output lines into a RunSummary. `now` is when the output was written: limit
    messages name wall-clock times relative to it."""

    now: datetime
    _session_ids: list[str] = field(default_factory=list, init=False)
    _result: FinalResult | None = field(default=None, init=False)
    _windows: dict[str, _Window] = field(default_factory=dict, init=False)
    _message_limits: list[Limit] = field(default_factory=list, init=False)
    _unknown_session: bool = field(default=False, init=False)
    _last_plain: str = field(default="", init=False)
    _pending: str = field(default="", init=False)  # the head of a line a spliced event cut in two

    def feed(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        line = text.strip()
        if not line:
            return
        pending, self._pending = self._pending, ""
        # The rest of a line cut in two starts where the cut was: a space there is the other's text.
        if pending and self._take_json(pending + text.rstrip()):
            return
        if not self._take_json(line) and not self._salvage(line) and not line.startswith("{"):
            self._take_plain(line)  # a broken event is the agent's words as much as the CLI's: not plain

    def summary(self) -> RunSummary:
        return RunSummary(
            session_ids=tuple(self._session_ids),
            result=self._result,
            limit=self._limit(),
            unknown_session=self._unknown_session,
            last_plain_line=self._last_plain,
        )

    def _take_json(self, line: str) -> bool:
        if not line.startswith("{"):
            return False
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            return False
        if isinstance(event, dict):
            self._take_event(event)
        return True

    def _salvage(self, line: str) -> bool:
        """A whole event at the end of a broken line was written into the middle of another: take
        it, and keep the head to join with the next line, which holds the rest of the other."""
        openings = [found.start() for found in _OBJECT_OPENING.finditer(line)]
        decoder = json.JSONDecoder()
        for start in reversed(openings[-MAX_SALVAGE_TRIES:]):
            try:
                event, end = decoder.raw_decode(line, start)
            except (ValueError, RecursionError):
                continue
            if end == len(line) and isinstance(event, dict) and event.get("type") in EVENT_TYPES:
                head = line[:start]
                if head.startswith("{") and not self._take_json(head.rstrip()):
                    self._pending = head
                self._take_event(event)
                return True
        return False

    def _take_plain(self, line: str) -> None:
        text = _ANSI.sub("", line)
        self._last_plain = text[:PLAIN_LINE_KEEP]
        self._note_cli_text(text)

    def _note_cli_text(self, text: str) -> None:
        if _UNKNOWN_SESSION.search(text):
            self._unknown_session = True
        limit = parse_limit_message(text, self.now)
        if limit is not None:
            self._message_limits.append(limit)

    def _take_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self._note_session(event.get("session_id"))
        elif kind == "result":
            self._take_result(event)
        elif kind == "rate_limit_event":
            self._take_rate_limit(event.get("rate_limit_info"))

    def _note_session(self, session_id: object) -> None:
        if isinstance(session_id, str) and session_id and session_id not in self._session_ids[-1:]:
            self._session_ids.append(session_id)

    def _take_result(self, event: dict[str, Any]) -> None:
        text = event.get("result")
        raw_errors = event.get("errors")
        errors = tuple(str(error) for error in raw_errors) if isinstance(raw_errors, list) else ()
        session_id = event.get("session_id")
        status = event.get("api_error_status")
        self._result = FinalResult(
            subtype=str(event.get("subtype") or ""),
            is_error=event.get("is_error") is True,
            text=text if isinstance(text, str) else "",
            errors=errors,
            session_id=session_id if isinstance(session_id, str) else "",
            api_error_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        )
        self._note_session(session_id)
        if self._result.is_error:
            for said in (self._result.text, *errors):
                self._note_cli_text(said)
            if event.get("api_error_status") == 429 and not self._message_limits:
                self._message_limits.append(Limit(None, self._result.text or "API error 429"))

    def _take_rate_limit(self, info: object) -> None:
        if not isinstance(info, dict):
            return
        status = info.get("status")
        if not isinstance(status, str):
            return
        overage = info.get("isUsingOverage") is True or info.get("overageStatus") in OVERAGE_ALLOWED
        resets = info.get("resetsAt")
        reset_at = None
        if isinstance(resets, int | float) and not isinstance(resets, bool):
            reset_at = _from_epoch(resets)
        window = str(info.get("rateLimitType") or "unknown")
        self._windows[window] = _Window(status not in ALLOWED_STATUSES and not overage, reset_at)

    def _limit(self) -> Limit | None:
        """Every window still blocked and every limit message: the account rests until the
        latest reset any of them names."""
        found = [Limit(w.reset_at, f"rate_limit_event {name}") for name, w in self._windows.items() if w.blocked]
        found += self._message_limits
        if not found:
            return None
        resets = [limit.reset_at for limit in found if limit.reset_at is not None]
        evidence = "; ".join(dict.fromkeys(limit.evidence for limit in found))
        return Limit(max(resets) if resets else None, evidence)


def read_lines(handle: BinaryIO) -> Iterator[bytes]:
    """Lines of at most MAX_LINE_BYTES; a longer one is skipped whole, never held in memory."""
    skipping = False
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        complete = line.endswith(b"\n")
        if skipping:
            skipping = not complete
            continue
        if not complete and len(line) > MAX_LINE_BYTES:
            skipping = True
            continue
        yield line


def event_or_text(raw: bytes) -> dict[str, Any] | str | None:
    """One line of a CLI's output: its JSON object, or its text when it is no JSON; None for an
    empty line, or a line that starts as JSON but is broken or no object (the agent's words as much
    as the CLI's: never taken as what the CLI said in plain text)."""
    line = raw.decode("utf-8", errors="replace").strip()
    if not line:
        return None
    if not line.startswith("{"):
        return line
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


class OutputReader(Protocol):
    """What every CLI's reader of its output is: fed line by line, then asked what the run said."""

    def feed(self, raw: bytes) -> None: ...

    def summary(self) -> RunSummary: ...


def summarize_with(reader: OutputReader, lines: Iterable[bytes]) -> RunSummary:
    for line in lines:
        reader.feed(line)
    return reader.summary()


def summarize_output(reader: OutputReader, path: Path, start: int = 0) -> RunSummary:
    """The run whose output begins at byte `start` of `path` (a resumed agent appends its runs to
    one file), read by `reader`. A missing file is a run that said nothing."""
    try:
        with control_files.open_plain(path) as handle:
            handle.seek(start)
            return summarize_with(reader, read_lines(handle))
    except OSError:  # missing, or not a plain file of its own (control_files.py)
        return RunSummary()


def summarize_lines(lines: Iterable[bytes], now: datetime) -> RunSummary:
    return summarize_with(StreamReader(now), lines)


def summarize_file(path: Path, now: datetime, start: int = 0) -> RunSummary:
    return summarize_output(StreamReader(now), path, start)
