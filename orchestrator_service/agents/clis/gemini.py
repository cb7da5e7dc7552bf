"""Gemini CLI (`gemini -o stream-json`; README, "Running with Gemini CLI"): how cw runs it, and
what a run said, read back.

How it runs (0.61.0, pinned by `make agent-clis`): `gemini -p "" -o stream-json --approval-mode yolo
--skip-trust` with the prompt on standard input (`-p` appends its text, empty, to it, and forces
the headless mode); `--session-id ID` (a UUID cw picks) starts a session, `--resume ID` continues
it. The CLI keeps its sessions under `$GEMINI_CLI_HOME/.gemini/tmp/<project>/chats/`, so a resume
needs the same config directory and the same work directory. No model is chosen here: the CLI's
default routes each request between models ("auto"); give one with `--provider gemini='gemini -m
MODEL'` or in the account's settings (`model.name`).

Under an account, `GEMINI_CLI_HOME` is the run's private config directory (the sandbox's HOME too),
holding `.gemini/settings.json` (cw's settings, below, under the account's `config_json` when that
is a JSON object) and `.gemini/.env` holding the account's key (`Account.credentials`: a Gemini API
key) as `GEMINI_API_KEY`, removed after each run. The CLI reads that file only when no variable of
that name is set, so the inherited credential variables are removed from the run's environment, and
with `advanced.ignoreLocalEnv` no `.env` of the repository's stands in front of it. cw's settings
select API-key auth (the CLI refuses a custom `GOOGLE_GEMINI_BASE_URL` without it), turn off
telemetry, usage statistics and update checks, and cap the CLI's own attempts per request at
MAX_ATTEMPTS (cw's policy, an account's rest, decides instead of minutes of back-off).

The lines (0.61.0; real ones in tests/fixtures/transcripts/gemini_*.jsonl): `init {session_id,
model}`, `message {role, content, delta}` (the assistant's text arrives in pieces, `delta: true`),
`tool_use`, `tool_result`, `error {severity, message}` (warnings, and errors the run goes on
after), and one `result {status, error?, stats}` that ends the run. The result carries no text:
the run's answer is the assistant's last message, the pieces written after the last tool call.

An error result says what went wrong only in words: `error.message` is `[API Error: ...]` holding
the API's own JSON body (a refused key: `{"error": {"code": 401|403, ...}}`, or 400 with reason
`API_KEY_INVALID`) or the CLI's words for an exhausted quota ("You have exhausted your daily
quota", "You exceeded your current quota. Please retry in 2s.", "Suggested retry after 2s.").
The CLI prints its report of the error on stderr, which is part of the output cw keeps: its
`Please retry in 3600s` says when a daily quota lifts, counted from the result's timestamp. A
resume of a session the CLI does not know prints `Error resuming session: ...` and no result.

What this returns is stream_json.py's RunSummary: a refused key reads as `api_error_status` 401
(what cw's outcome policy takes for a credential the API refused, whatever status the API chose);
an exhausted quota as a `Limit`. The output is hostile input: lines past MAX_LINE_BYTES are
skipped, the answer kept is at most MAX_ANSWER_CHARS, and nothing here raises on any byte.
Usage (the result's `stats`) is read by usage.py (`gemini_counts`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from orchestrator_service.agents import stream_json
from orchestrator_service.agents.clis.base import Cli, PromptInput, RunRequest, SessionOrigin
from orchestrator_service.agents.stream_json import (
    PLAIN_LINE_KEEP,
    FinalResult,
    Limit,
    RunSummary,
)

NAME = "gemini"
SETTINGS_FILE = ".gemini/settings.json"
KEY_FILE = ".gemini/.env"
KEY_VARIABLE = "GEMINI_API_KEY"
# The CLI's attempts per request (its default, 10, waits out per-minute quotas for minutes).
MAX_ATTEMPTS = 2
# A key goes into a .env line single-quoted: these characters, and nothing else, may be in it.
_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=:-]{1,512}")

# The answer kept (the summary cw stores is shorter still: claude_outcome.MAX_REPORTED_BYTES).
MAX_ANSWER_CHARS = 256 * 1024
# A refused credential, as cw's outcome policy knows it (claude_outcome.UNAUTHORIZED).
REFUSED_CREDENTIAL = 401
QUOTA_STATUS = 429
# Retry delays past this (a year) are nonsense, not a reset.
MAX_RETRY_SECONDS = 366 * 24 * 3600.0


class Event(StrEnum):
    INIT = "init"
    MESSAGE = "message"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"
    ERROR = "error"
    RESULT = "result"


SUCCESS = "success"
UNKNOWN_ERROR = "unknown"
ASSISTANT = "assistant"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_UNKNOWN_SESSION = re.compile(r"Error resuming session\b", re.IGNORECASE)
# The CLI's words for an exhausted quota (googleQuotaErrors in the CLI) and the API's status name.
_QUOTA = re.compile(
    r"exhausted your (?:daily )?quota|exceeded your current quota|quota exceeded|RESOURCE_EXHAUSTED|"
    r"(?:Terminal|Retryable)QuotaError|rate limit exceeded",
    re.IGNORECASE,
)
# "Please retry in 3600s", "Suggested retry after 2s", "Please retry in 1.5ms".
_RETRY = re.compile(r"(?:retry in|retry after)\s+(?P<value>\d{1,12}(?:\.\d{1,9})?)\s*(?P<unit>ms|s)\b", re.IGNORECASE)
_STATUS_CODE = re.compile(r'"code"\s*:\s*(?P<code>\d{3})\b')
_KEY_REFUSED = re.compile(r"API_KEY_INVALID|API key not valid|API key expired", re.IGNORECASE)
_REFUSING_STATUSES = frozenset({401, 403})


def retry_seconds(text: str) -> float | None:
    """The longest retry delay `text` names, in seconds."""
    delays = []
    for found in _RETRY.finditer(text):
        value = float(found.group("value")) / (1000.0 if found.group("unit").lower() == "ms" else 1.0)
        if value <= MAX_RETRY_SECONDS:
            delays.append(value)
    return max(delays) if delays else None


def api_status(message: str) -> int | None:
    """The HTTP status an error result's message names: the API's JSON body's `code`, a refused key
    read as REFUSED_CREDENTIAL, the CLI's quota words as 429."""
    found = _STATUS_CODE.search(message)
    code = int(found.group("code")) if found else None
    if code in _REFUSING_STATUSES or _KEY_REFUSED.search(message):
        return REFUSED_CREDENTIAL
    if code is None and _QUOTA.search(message):
        return QUOTA_STATUS
    return code


_API_ERROR_BODY = re.compile(r"^\[API Error: (?P<body>\{.*\})\]", re.DOTALL)


def readable(message: str) -> str:
    """An error result's message as a person reads it: the API's own words (`error.message`, its
    status name) in place of the JSON body the CLI quotes; anything else as it is."""
    found = _API_ERROR_BODY.match(message.strip())
    if found is None:
        return message
    try:
        body = json.loads(found.group("body"))
    except (ValueError, RecursionError):
        return message
    error = body.get("error") if isinstance(body, dict) else None
    said = error.get("message") if isinstance(error, dict) else None
    if not isinstance(said, str) or not said.strip():
        return message
    status = error.get("status") if isinstance(error, dict) else None
    return f"Gemini API: {said.strip()}" + (f" ({status})" if isinstance(status, str) and status else "")


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class Reader:
    """Folds a run's output lines into a RunSummary. `now` is when the output was written: the
    moment a retry delay counts from when no result names its own."""

    now: datetime
    _session_ids: list[str] = field(default_factory=list, init=False)
    _answer: list[str] = field(default_factory=list, init=False)
    _answer_chars: int = field(default=0, init=False)
    _answer_closed: bool = field(default=False, init=False)
    _errors: list[str] = field(default_factory=list, init=False)
    _result: FinalResult | None = field(default=None, init=False)
    _result_at: datetime | None = field(default=None, init=False)
    _quota_said: list[str] = field(default_factory=list, init=False)
    _retry: float | None = field(default=None, init=False)
    _unknown_session: bool = field(default=False, init=False)
    _last_plain: str = field(default="", init=False)

    def feed(self, raw: bytes) -> None:
        line = stream_json.event_or_text(raw)
        if isinstance(line, dict):
            self._take_event(line)
        elif line is not None:
            self._take_plain(line)

    def summary(self) -> RunSummary:
        return RunSummary(
            session_ids=tuple(self._session_ids),
            result=self._result,
            limit=self._limit(),
            unknown_session=self._unknown_session,
            last_plain_line=self._last_plain,
        )

    def _take_plain(self, line: str) -> None:
        text = _ANSI.sub("", line)
        self._last_plain = text[:PLAIN_LINE_KEEP]
        self._note_cli_text(text)

    def _note_cli_text(self, text: str) -> None:
        """Words the CLI wrote (never the model's): an unknown session, a quota and its delay."""
        if _UNKNOWN_SESSION.search(text):
            self._unknown_session = True
        if _QUOTA.search(text):
            self._quota_said.append(text[:PLAIN_LINE_KEEP])
        delay = retry_seconds(text)
        if delay is not None:
            self._retry = delay if self._retry is None else max(self._retry, delay)

    def _take_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == Event.INIT:
            self._note_session(event.get("session_id"))
        elif kind == Event.MESSAGE and event.get("role") == ASSISTANT:
            self._take_text(event.get("content"), event.get("delta") is True)
        elif kind in (Event.TOOL_USE, Event.TOOL_RESULT):
            self._answer_closed = True
        elif kind == Event.ERROR and event.get("severity") == "error":
            message = event.get("message")
            if isinstance(message, str) and len(self._errors) < 100:
                self._errors.append(message[:PLAIN_LINE_KEEP])
        elif kind == Event.RESULT:
            self._take_result(event)

    def _note_session(self, session_id: object) -> None:
        if isinstance(session_id, str) and session_id and session_id not in self._session_ids[-1:]:
            self._session_ids.append(session_id)

    def _take_text(self, content: object, delta: bool) -> None:
        """The assistant's pieces after the last tool call are its answer."""
        if not isinstance(content, str):
            return
        if self._answer_closed or not delta:
            self._answer, self._answer_chars, self._answer_closed = [], 0, False
        room = MAX_ANSWER_CHARS - self._answer_chars
        if room > 0:
            self._answer.append(content[:room])
            self._answer_chars += min(len(content), room)

    def _take_result(self, event: dict[str, Any]) -> None:
        self._result_at = _timestamp(event.get("timestamp"))
        status = event.get("status")
        if status == SUCCESS:
            self._result = FinalResult(SUCCESS, False, "".join(self._answer), tuple(self._errors))
            return
        error = event.get("error")
        error = error if isinstance(error, dict) else {}
        message = error.get("message")
        message = message if isinstance(message, str) else ""
        kind = error.get("type")
        # The CLI's error type names its own error classes; "unknown" (an API error) says nothing.
        subtype = kind if isinstance(kind, str) and kind != UNKNOWN_ERROR else ""
        code = api_status(message)
        text = readable(message)
        self._result = FinalResult(subtype[:PLAIN_LINE_KEEP], True, text, tuple(self._errors), "", code)
        self._note_cli_text(message)
        if code == QUOTA_STATUS and not self._quota_said:
            self._quota_said.append(message[:PLAIN_LINE_KEEP] or "API error 429")

    def _limit(self) -> Limit | None:
        """An exhausted quota, lifting after the longest delay the CLI named (counted from its
        result, else from `now`), else at no named time; none when the run ended well."""
        if not self._quota_said or (self._result is not None and not self._result.is_error):
            return None
        evidence = "; ".join(dict.fromkeys(said.strip() for said in self._quota_said))[:PLAIN_LINE_KEEP]
        if self._retry is None:
            return Limit(None, evidence)
        try:
            return Limit((self._result_at or self.now) + timedelta(seconds=self._retry), evidence)
        except OverflowError:
            return Limit(None, evidence)


def summarize_lines(lines: Iterable[bytes], now: datetime) -> RunSummary:
    return stream_json.summarize_with(Reader(now), lines)


def summarize_file(path: Path, now: datetime, start: int = 0) -> RunSummary:
    return stream_json.summarize_output(Reader(now), path, start)


# ---- running it -------------------------------------------------------------------------------


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over`'s values, objects merged key by key."""
    result = dict(base)
    for key, value in over.items():
        current = result.get(key)
        result[key] = _merged(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return result


CW_SETTINGS: dict[str, Any] = {
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": MAX_ATTEMPTS},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "advanced": {"ignoreLocalEnv": True},
}
# What an account's settings cannot change: its key is what the run uses.
FORCED_SETTINGS: dict[str, Any] = {"security": {"auth": {"selectedType": "gemini-api-key"}}}


def settings(config_json: str) -> str:
    """The run's settings.json: cw's, under the account's own (a JSON object; anything else is not
    settings and is left out), API-key auth whatever the account says."""
    try:
        own = json.loads(config_json) if config_json else {}
    except (ValueError, RecursionError):
        own = {}
    own = own if isinstance(own, dict) else {}
    return json.dumps(_merged(_merged(CW_SETTINGS, own), FORCED_SETTINGS), indent=2)


def key_file(credentials: str) -> str | None:
    """The .env line holding the account's key; None when it is not one key (no line is written
    that could set anything else)."""
    key = credentials.strip()
    return f"{KEY_VARIABLE}='{key}'\n" if _KEY_CHARACTERS.fullmatch(key) else None


class Gemini(Cli):
    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Gemini CLI"
    program: ClassVar[str] = "gemini"
    prompt_input: ClassVar[PromptInput] = PromptInput.STDIN
    session_origin: ClassVar[SessionOrigin] = SessionOrigin.CW
    # Where the CLI takes a key or another Google credential from before its .env file.
    credential_variables: ClassVar[tuple[str, ...]] = (
        KEY_VARIABLE,
        "GOOGLE_API_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_ACCESS_TOKEN",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_GCA",
    )
    config_dir_variable: ClassVar[str] = "GEMINI_CLI_HOME"
    secret_files: ClassVar[tuple[str, ...]] = (KEY_FILE,)

    def arguments(self, run: RunRequest) -> list[str]:
        flags = ["-p", "", "-o", "stream-json", "--approval-mode", "yolo", "--skip-trust"]
        session = ["--resume", run.session_id] if run.resume else ["--session-id", run.session_id]
        return [*flags, *session]

    def account_files(self, config_json: str, credentials: str) -> dict[str, str]:
        files = {SETTINGS_FILE: settings(config_json)} if config_json or credentials else {}
        key = key_file(credentials) if credentials else None
        if key is not None:
            files[KEY_FILE] = key
        return files

    def summarize(self, output: Path, start: int, now: datetime) -> RunSummary:
        return summarize_file(output, now, start)
