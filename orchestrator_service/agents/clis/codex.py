"""OpenAI's Codex CLI (`codex exec --json`, @openai/codex 0.171): its prompt on standard input
(`-`), a session (thread) the CLI names, its account's `config.toml` and `auth.json` in
`CODEX_HOME`, its JSONL output read here.

What a run prints (tests/fixtures/transcripts/codex_*.jsonl, recorded from the real CLI against
tests/fake_openai.py): `thread.started {thread_id}` (a resume, `codex exec resume ID`, prints the
same id), `turn.started`, `item.started`/`item.completed` (`command_execution`, `agent_message`
with its `text`, `error` items that are warnings), then `turn.completed {usage}` or, when the API
refused, `error {message}` lines and `turn.failed {error: {message}}`, exit status 1. What cw
reads from the refusal's message:

- "You've hit your usage limit. ... try again at Dec 8th, 2026 1:06 AM." (a typographic apostrophe;
  a 429 whose body names `resets_at`; the time is local, its date left out when it is today) or
  "... try again later.": a limit;
  "exceeded retry limit, last status: 429 Too Many Requests": a limit with no reset;
- "unexpected status 401 Unauthorized: ...": the credential refused;
- anything else: an error, its message the reason.

Resuming a thread the CLI does not know prints, as plain text, `Error: thread/resume: thread/resume
failed: no rollout found for thread id ID`, exit status 1: an unknown session.

Codex has a sandbox of its own for the commands the model runs (Landlock, seccomp, bubblewrap);
inside cw's sandbox (or the person's, `--agents-in-sandbox`) it cannot set one up again, so cw runs
it with `--dangerously-bypass-approvals-and-sandbox`: cw's sandbox is the boundary.

The output is the agent's, so hostile: anything that is not what is described above is ignored,
and nothing here raises on any input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
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

NAME = "codex"
CONFIG_FILE = "config.toml"
AUTH_FILE = "auth.json"
# What codex exec reads an API key from besides auth.json (CODEX_API_KEY: exec only).
CREDENTIAL_VARIABLES = ("OPENAI_API_KEY", "CODEX_API_KEY")
UNAUTHORIZED = 401
# A thread id as Codex prints it (a UUID); anything else is not taken as a session to resume.
_THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_UNKNOWN_SESSION = re.compile(r"no rollout found|thread/resume failed", re.IGNORECASE)
_UNAUTHORIZED = re.compile(r"\b401 Unauthorized\b|\bstatus:?\s*401\b", re.IGNORECASE)
_USAGE_LIMIT = re.compile(r"you[\u2019']ve hit your usage limit", re.IGNORECASE)
_TOO_MANY = re.compile(r"\b429\b|too many requests|rate limit", re.IGNORECASE)
_RETRY_AT = re.compile(
    r"try again at\s+(?:(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,\s+(?P<year>\d{4})\s+)?"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<half>AM|PM)",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
# Codex's retry notices ("Reconnecting... 2/5 (...)") are not the run's end.
_RECONNECTING = "Reconnecting..."


def reset_of(message: str, now: datetime) -> datetime | None:
    """The reset a usage-limit message names (`try again at [Mon Dth, YYYY ]H:MM AM`), in `now`'s
    zone (the CLI's local time, on the same machine); None when it names none or is no date."""
    found = _RETRY_AT.search(message)
    if found is None:
        return None
    zone: tzinfo | None = now.tzinfo
    hour, minute = int(found.group("hour")), int(found.group("minute"))
    if not 1 <= hour <= 12 or minute > 59:
        return None
    hour = hour % 12 + (12 if found.group("half").upper() == "PM" else 0)
    local_now = now.astimezone(zone)
    try:
        if found.group("month"):
            month = _MONTHS.get(found.group("month").lower())
            if month is None:
                return None
            day = date(int(found.group("year")), month, int(found.group("day")))
        else:
            day = local_now.date()
        return datetime.combine(day, time(hour, minute), local_now.tzinfo)
    except (ValueError, OverflowError):
        return None


def limit_of(message: str, now: datetime) -> Limit | None:
    """The limit a refusal's message names, or None."""
    if _USAGE_LIMIT.search(message):
        return Limit(reset_of(message, now), message[:PLAIN_LINE_KEEP])
    if _TOO_MANY.search(message):
        return Limit(None, message[:PLAIN_LINE_KEEP])
    return None


@dataclass
class CodexReader:
    """Folds a run's output lines into a RunSummary."""

    now: datetime
    _session_ids: list[str] = field(default_factory=list, init=False)
    _said: str = field(default="", init=False)  # the last agent message of the current turn
    _completed: bool = field(default=False, init=False)
    _failure: str = field(default="", init=False)
    _unknown_session: bool = field(default=False, init=False)
    _last_plain: str = field(default="", init=False)

    def feed(self, raw: bytes) -> None:
        line = stream_json.event_or_text(raw)
        if isinstance(line, dict):
            self._take(line)
            return
        if line is None:
            return
        text = _ANSI.sub("", line)
        self._last_plain = text[:PLAIN_LINE_KEEP]
        if _UNKNOWN_SESSION.search(text):
            self._unknown_session = True

    def _take(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "thread.started":
            thread = event.get("thread_id")
            if isinstance(thread, str) and _THREAD_ID.match(thread) and thread not in self._session_ids[-1:]:
                self._session_ids.append(thread)
        elif kind == "turn.started":
            self._said, self._completed, self._failure = "", False, ""
        elif kind == "item.completed":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                self._said = item["text"]
        elif kind == "turn.completed":
            self._completed, self._failure = True, ""
        elif kind == "turn.failed":
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self._completed = False
            self._failure = message if isinstance(message, str) and message else self._failure or "turn failed"
        elif kind == "error":
            message = event.get("message")
            if isinstance(message, str) and message and not message.startswith(_RECONNECTING):
                self._failure = message

    def summary(self) -> RunSummary:
        result: FinalResult | None = None
        limit: Limit | None = None
        session = self._session_ids[-1] if self._session_ids else ""
        if self._failure:
            status = UNAUTHORIZED if _UNAUTHORIZED.search(self._failure) else None
            result = FinalResult("", True, self._failure, session_id=session, api_error_status=status)
            limit = None if status is not None else limit_of(self._failure, self.now)
        elif self._completed:
            result = FinalResult("success", False, self._said, session_id=session)
        return RunSummary(
            session_ids=tuple(self._session_ids),
            result=result,
            limit=limit,
            unknown_session=self._unknown_session,
            last_plain_line=self._last_plain,
        )


def summarize_lines(lines: Iterable[bytes], now: datetime) -> RunSummary:
    return stream_json.summarize_with(CodexReader(now), lines)


def summarize_file(path: Path, now: datetime, start: int = 0) -> RunSummary:
    return stream_json.summarize_output(CodexReader(now), path, start)


def auth_json(credentials: str) -> str:
    """An account's credentials as Codex's auth.json: given as that file (`{"OPENAI_API_KEY":
    ...}`, or a ChatGPT login's `{"tokens": ...}`), or as a bare API key."""
    try:
        parsed = json.loads(credentials)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return credentials
    return json.dumps({"OPENAI_API_KEY": credentials.strip()})


class Codex(Cli):
    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Codex"
    program: ClassVar[str] = "codex"
    prompt_input: ClassVar[PromptInput] = PromptInput.STDIN
    session_origin: ClassVar[SessionOrigin] = SessionOrigin.CLI
    credential_variables: ClassVar[tuple[str, ...]] = CREDENTIAL_VARIABLES
    config_dir_variable: ClassVar[str] = "CODEX_HOME"
    secret_files: ClassVar[tuple[str, ...]] = (AUTH_FILE,)

    def arguments(self, run: RunRequest) -> list[str]:
        flags = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
        if run.resume:
            return ["exec", "resume", *flags, run.session_id, "-"]
        return ["exec", *flags, "-"]

    def account_files(self, config_json: str, credentials: str) -> dict[str, str]:
        """`config_json` holds the text of Codex's config.toml (the model, a custom provider); the
        credentials become auth.json."""
        files = {}
        if config_json:
            files[CONFIG_FILE] = config_json
        if credentials:
            files[AUTH_FILE] = auth_json(credentials)
        return files

    def summarize(self, output: Path, start: int, now: datetime) -> RunSummary:
        return summarize_file(output, now, start)
