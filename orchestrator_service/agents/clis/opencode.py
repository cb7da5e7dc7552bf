"""OpenCode (`opencode-ai` on the npm registry): how cw runs it, and what a run said.

`opencode run --format json` prints one JSON event a line, each naming its session (`sessionID`,
assigned by OpenCode: cw reads it from the output and resumes with `-s ID`): `step_start`, `text`
(a finished text part), `tool_use` (a finished tool call), `step_finish` (the step's `reason`:
`tool-calls` while the model works, `stop` when it is done; its `tokens` and `cost`), and `error`
(`{name, data: {message, statusCode, responseHeaders, ...}}`) when the run ends on an API error,
after OpenCode's own retries (a 429 is retried five times, waiting what `retry-after-ms` or
`retry-after` say, else 2 to 30 seconds). Resuming a session it does not know prints a plain
`Session not found` and exits 1 (tests/fixtures/transcripts/opencode_*.jsonl, recorded from
1.18.33 by tests/fixtures/record_opencode.py).

What cw sets for a run: the account's `opencode.json` in $XDG_CONFIG_HOME/opencode and its
`auth.json` (OpenCode's own credential file, `{"PROVIDER": {"type": "api", "key": "..."}}`) in
$XDG_DATA_HOME/opencode, both inside the run's private home; and switches that keep OpenCode from
reaching anything but the model's API (ENVIRONMENT). OpenCode installs `@opencode-ai/plugin` from
the npm registry into every config directory it may write that has no `node_modules`, or whose
`package-lock.json` does not list it: cw writes both (PLUGIN_LOCK), so it installs nothing.

The output is the agent's own, so hostile: lines longer than stream_json.MAX_LINE_BYTES are skipped,
anything that is not an event is a plain line, and nothing here raises on any byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

from orchestrator_service.agents import control_files, stream_json
from orchestrator_service.agents.clis.base import Cli, PromptInput, RunRequest, SessionOrigin
from orchestrator_service.agents.stream_json import FinalResult, Limit, RunSummary
from orchestrator_service.agents.usage import Counts, opencode_step_counts

NAME = "opencode"
# A run: JSON events, and every permission the agent asks for granted (cw's sandbox holds it, as
# --dangerously-skip-permissions does for Claude Code); the prompt comes on standard input.
RUN_FLAGS = ("run", "--format", "json", "--auto")
SESSION_FLAG = "-s"
# Nothing fetched at run time: the models.dev list, updates, language servers, default plugins,
# shares; nothing from the repository (its opencode.json could point the account's key at another
# server or name plugins to install; its .opencode/ would get OpenCode's node_modules). That also
# leaves out the repository's AGENTS.md (README, "Running with OpenCode").
ENVIRONMENT = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
}
# Variables OpenCode would take a key or a config from before the account's files: a run under an
# account gets none of these from the orchestrator's environment.
CREDENTIAL_VARIABLES = (
    "OPENCODE_API_KEY",
    "OPENCODE_AUTH_CONTENT",
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_CONFIG_DIR",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
)
# The account's files, by their path in the run's config directory (its HOME in the sandbox).
CONFIG_FILE = Path(".config/opencode/opencode.json")
AUTH_FILE = Path(".local/share/opencode/auth.json")
# OpenCode installs this into each config directory it may write, unless that directory has a
# `node_modules` (here: a directory holding PLUGIN_MARKER) and a `package-lock.json` naming it.
PLUGIN_PACKAGE = "@opencode-ai/plugin"
PLUGIN_LOCK = {"packages": {"": {"dependencies": {PLUGIN_PACKAGE: "*"}}}}
PLUGIN_LOCK_FILE = Path(".config/opencode/package-lock.json")
PLUGIN_MARKER = Path(".config/opencode/node_modules/.cw")
PLUGIN_MARKER_TEXT = "Written by cw: OpenCode installs nothing here at run time.\n"
SESSION_NOT_FOUND = "Session not found"
TOO_MANY_REQUESTS = 429
# Step-finish reasons that end the run's work (anything else, `tool-calls`, means it goes on).
_CONTINUING = "tool-calls"
# Errors and texts kept per run: past these, the latest replace nothing (memory stays bounded).
MAX_ERRORS = 100
MAX_TEXT_PARTS = 1_000


# ---- the adapter ------------------------------------------------------------------------------


def xdg_directories(home: Path) -> dict[str, str]:
    """Where OpenCode keeps its config, sessions (its database), state and cache: in `home`, laid
    out as under a HOME (so in the sandbox, whose HOME is the run's config directory, the same)."""
    return {
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def run_environment(home: Path) -> dict[str, str]:
    """HOME and the XDG directories in `home`, and ENVIRONMENT (tests/fixtures/record_opencode.py)."""
    return {"HOME": str(home), **xdg_directories(home), **ENVIRONMENT}


def account_files(config_json: str, credentials: str) -> dict[str, str]:
    """The account's opencode.json and auth.json, and the plugin lock, by their path in the home."""
    files = {str(PLUGIN_MARKER): PLUGIN_MARKER_TEXT, str(PLUGIN_LOCK_FILE): json.dumps(PLUGIN_LOCK)}
    if config_json:
        files[str(CONFIG_FILE)] = config_json
    if credentials:
        files[str(AUTH_FILE)] = credentials
    return files


def write_account_files(home: Path, config_json: str, credentials: str) -> None:
    """`account_files` written into `home` (as launcher.start writes them into the run's)."""
    for name, text in account_files(config_json, credentials).items():
        control_files.make_directories(home, Path(name).parent)
        control_files.write_private(home / name, text)


class OpenCode(Cli):
    name: ClassVar[str] = NAME
    label: ClassVar[str] = "OpenCode"
    program: ClassVar[str] = "opencode"
    # `opencode run` reads its message from standard input when that is no terminal.
    prompt_input: ClassVar[PromptInput] = PromptInput.STDIN
    session_origin: ClassVar[SessionOrigin] = SessionOrigin.CLI
    credential_variables: ClassVar[tuple[str, ...]] = CREDENTIAL_VARIABLES
    # Set to the run's config directory's `.config` (environment sets the other XDG directories).
    config_dir_variable: ClassVar[str] = "XDG_CONFIG_HOME"
    secret_files: ClassVar[tuple[str, ...]] = (str(AUTH_FILE),)

    def arguments(self, run: RunRequest) -> list[str]:
        """A new run, or `-s ID` to resume the session OpenCode named (none known: a new one)."""
        session = [SESSION_FLAG, run.session_id] if run.resume and run.session_id else []
        return [*RUN_FLAGS, *session]

    def environment(self, env: Mapping[str, str], run: RunRequest) -> dict[str, str]:
        """ENVIRONMENT always (nothing downloaded); under an account, every XDG directory in the
        run's config directory, so that OpenCode reads that account's files and no one else's."""
        result = super().environment(env, run)
        if run.config_dir is not None:
            result.update(xdg_directories(run.config_dir))
        result.update(ENVIRONMENT)
        return result

    def account_files(self, config_json: str, credentials: str) -> dict[str, str]:
        return account_files(config_json, credentials)

    def summarize(self, output: Path, start: int, now: datetime) -> RunSummary:
        return summarize_file(output, now, start)


# ---- reading a run's output -------------------------------------------------------------------


@dataclass
class Reader:
    """Folds a run's output lines into a RunSummary and its usage. `now` is when the output was
    written: a `retry-after` in seconds counts from the error's own timestamp, else from it."""

    now: datetime
    _session_ids: list[str] = field(default_factory=list, init=False)
    _texts: dict[str, list[str]] = field(default_factory=dict, init=False)
    _finished: str | None = field(default=None, init=False)  # the message whose step ended the work
    _errors: list[tuple[str, int | None]] = field(default_factory=list, init=False)
    _error_name: str = field(default="", init=False)  # the last error's (`APIError`): the subtype
    _limits: list[Limit] = field(default_factory=list, init=False)
    _unknown_session: bool = field(default=False, init=False)
    _last_plain: str = field(default="", init=False)
    _usage: Counts = field(default_factory=Counts, init=False)

    def feed(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            return
        event = _json_object(line)
        if event is None:
            self._take_plain(line)
        else:
            self._take_event(event)

    @property
    def usage(self) -> Counts:
        return self._usage

    def summary(self) -> RunSummary:
        return RunSummary(
            session_ids=tuple(self._session_ids),
            result=self._result(),
            limit=_latest(self._limits),
            unknown_session=self._unknown_session,
            last_plain_line=self._last_plain,
        )

    def _result(self) -> FinalResult | None:
        session = self._session_ids[-1] if self._session_ids else ""
        if self._errors:
            said = [message for message, _ in self._errors]
            status = next((status for _, status in reversed(self._errors) if status is not None), None)
            return FinalResult(self._error_name or "error", True, said[-1], tuple(said), session, status)
        if self._finished is None:
            return None
        text = "\n\n".join(self._texts.get(self._finished, []))
        return FinalResult("success", False, text, (), session)

    def _take_plain(self, line: str) -> None:
        text = stream_json._ANSI.sub("", line)
        self._last_plain = text[: stream_json.PLAIN_LINE_KEEP]
        if SESSION_NOT_FOUND.lower() in text.lower():
            self._unknown_session = True
        limit = stream_json.parse_limit_message(text, self.now)
        if limit is not None:
            self._limits.append(limit)

    def _take_event(self, event: dict[str, Any]) -> None:
        session = event.get("sessionID")
        if isinstance(session, str) and session and session not in self._session_ids[-1:]:
            self._session_ids.append(session)
        kind = event.get("type")
        part = _object(event.get("part"))
        message = _text(part.get("messageID"))
        if kind == "text" and isinstance(part.get("text"), str):
            self._add_text(message, _text(part.get("text")))
        elif kind == "step_finish":
            counts = opencode_step_counts(event)
            if counts is not None:
                self._usage = self._usage.plus(counts)
            self._finished = None if part.get("reason") == _CONTINUING else message
        elif kind == "error":
            self._take_error(event)

    def _add_text(self, message: str, text: str) -> None:
        if message not in self._texts and len(self._texts) >= MAX_TEXT_PARTS:
            return
        texts = self._texts.setdefault(message, [])
        if len(texts) < MAX_TEXT_PARTS:
            texts.append(text)

    def _take_error(self, event: dict[str, Any]) -> None:
        error = _object(event.get("error"))
        data = _object(error.get("data"))
        self._error_name = _text(error.get("name"))[: stream_json.PLAIN_LINE_KEEP]
        message = _text(data.get("message")) or self._error_name or "error"
        raw_status = data.get("statusCode")
        status = raw_status if isinstance(raw_status, int) and not isinstance(raw_status, bool) else None
        if len(self._errors) < MAX_ERRORS:
            self._errors.append((message, status))
        said = _timestamp(event.get("timestamp")) or self.now
        limit = stream_json.parse_limit_message(message, said)
        if status == TOO_MANY_REQUESTS:
            limit = Limit(_reset(data.get("responseHeaders"), said), f"API error 429: {message}")
        if limit is not None:
            self._limits.append(limit)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _timestamp(value: object) -> datetime | None:
    """An event's `timestamp` (milliseconds since the epoch)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _reset(headers: object, said: datetime) -> datetime | None:
    """When a 429 lifts, from the response headers OpenCode passes on: Anthropic's unified reset
    (epoch seconds), `retry-after-ms`, `retry-after` (seconds or an HTTP date); the latest."""
    if not isinstance(headers, dict):
        return None
    found: list[datetime | None] = []
    for name in (
        "anthropic-ratelimit-unified-reset",
        "anthropic-ratelimit-unified-5h-reset",
        "anthropic-ratelimit-unified-7d-reset",
    ):
        epoch = _number(headers.get(name))
        found.append(stream_json._from_epoch(epoch) if epoch is not None else None)
    milliseconds = _number(headers.get("retry-after-ms"))
    found.append(_after(said, milliseconds / 1000) if milliseconds is not None else None)
    found.append(_retry_after(headers.get("retry-after"), said))
    known = [at for at in found if at is not None]
    return max(known) if known else None


def _number(value: object) -> float | None:
    try:
        number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def _after(said: datetime, seconds: float) -> datetime | None:
    try:
        return said + timedelta(seconds=seconds)
    except OverflowError:
        return None


def _retry_after(value: object, said: datetime) -> datetime | None:
    seconds = _number(value)
    if seconds is not None:
        return _after(said, seconds)
    if not isinstance(value, str):
        return None
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _latest(limits: list[Limit]) -> Limit | None:
    if not limits:
        return None
    resets = [limit.reset_at for limit in limits if limit.reset_at is not None]
    evidence = "; ".join(dict.fromkeys(limit.evidence for limit in limits))
    return Limit(max(resets) if resets else None, evidence)


def read(lines: Iterable[bytes], now: datetime) -> Reader:
    reader = Reader(now)
    for line in lines:
        reader.feed(line)
    return reader


def summarize_lines(lines: Iterable[bytes], now: datetime) -> RunSummary:
    return read(lines, now).summary()


def summarize_file(path: Path, now: datetime, start: int = 0) -> RunSummary:
    return stream_json.summarize_output(Reader(now), path, start)
