"""What a finished run of a built-in CLI means, from its exit, its signal file and its output.

Written for Claude Code, the policy holds for every built-in CLI (clis/): each adapter reads its
own output into a `RunSummary` (Claude Code's stream-json: stream_json.py; Codex's JSONL:
clis/codex.py), and the outcome follows from that. The CLI knows nothing of `CW_SIGNAL_FILE` (the
agent writes it only when it follows its prompt), so when the file says nothing the run's own
output decides:

1. the signal file, when there is one, is the stronger word (README, "The agent protocol");
2. a resume of a session the CLI does not know is reported as such (`unknown_session`), so the
   caller starts a new session with the task's prompt plus the answers (fresh_session_prompt);
3. a credential the API refused (an error result with `api_error_status` 401: "Invalid API key ·
   Fix external API key", "Not logged in · Please run /login") is `credentials_refused`: the account
   is unusable, and no attempt is spent (the task moves to another account);
4. a usage limit is `rate_limited` until the reset the CLI named: the account rests, and no attempt
   is spent;
5. an error result is a failed attempt, its text the reason;
6. any other non-zero exit is a crash;
7. a success result completes the task with its text as the summary.

The session id the CLI reported rides along on every outcome, for the caller to store on the agent
and resume. Everything but `run_outcome` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from orchestrator_service.agents import clis, shim
from orchestrator_service.agents.stream_json import FinalResult, Limit, RunSummary
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind, classify_exit

# A limit that named no reset time rests this long; a reset already past, at least this long.
DEFAULT_LIMIT_REST_SECONDS = 300.0
MIN_LIMIT_REST_SECONDS = 60.0
# The API's answer to a credential it does not accept.
UNAUTHORIZED = 401
# Summaries go into dependent tasks' prompts and, with reasons, into events (64 KiB each at most).
MAX_REPORTED_BYTES = 16 * 1024


def clip(text: str, limit: int = MAX_REPORTED_BYTES) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."


def rest_seconds(limit: Limit, now: datetime) -> float:
    if limit.reset_at is None:
        return DEFAULT_LIMIT_REST_SECONDS
    return max((limit.reset_at - now).total_seconds(), MIN_LIMIT_REST_SECONDS)


def rest_until(limit: Limit, now: datetime) -> datetime | None:
    """The named reset, when it is at least the shortest rest away (else the rest is counted)."""
    if limit.reset_at is None or (limit.reset_at - now).total_seconds() < MIN_LIMIT_REST_SECONDS:
        return None
    return limit.reset_at


def _error_reason(result: FinalResult, label: str) -> str:
    said = result.text or "; ".join(result.errors)
    if result.subtype and result.subtype != "success":
        return f"{result.subtype}: {said}" if said else f"{label} stopped: {result.subtype}"
    return said or f"{label} reported an error"


def claude_outcome(
    exit_code: int | None, signal_text: str | None, run: RunSummary, now: datetime, label: str = "Claude Code"
) -> AgentOutcome:
    """The outcome of one run of a built-in CLI (`label` names it in reasons). `exit_code` None:
    killed by a signal or vanished. `now` is an aware datetime, for the time left until a limit's
    reset."""
    session = run.session_id
    # In the sandbox an exit of 128 + N reads as death by signal N (shim.sandboxed_returncode), and
    # Gemini CLI exits with the API's HTTP status, mod 256 (400: 144 = 128 + SIGSTKFLT): a run that
    # printed an error result ended by itself, and its result says why.
    reported_error = run.result is not None and run.result.is_error
    if exit_code is None and not reported_error:
        return replace(classify_exit(None, None), session_id=session)
    if exit_code is not None and signal_text is not None and signal_text.strip():
        return replace(classify_exit(0, signal_text), exit_code=exit_code, session_id=session)
    if run.unknown_session:
        return AgentOutcome(
            OutcomeKind.ERROR,
            error=f"{label} has no conversation with that session id: start a new session",
            exit_code=exit_code,
            unknown_session=True,
        )
    if run.result is not None and run.result.is_error and run.result.api_error_status == UNAUTHORIZED:
        return AgentOutcome(
            OutcomeKind.CREDENTIALS_REFUSED,
            error=clip(_error_reason(run.result, label)),
            exit_code=exit_code,
            session_id=session,
        )
    if run.limit is not None and not run.succeeded:
        return AgentOutcome(
            OutcomeKind.RATE_LIMITED,
            error=clip(run.limit.evidence),
            retry_after_seconds=rest_seconds(run.limit, now),
            rest_until=rest_until(run.limit, now),
            exit_code=exit_code,
            session_id=session,
        )
    if run.result is not None and run.result.is_error:
        reason = clip(_error_reason(run.result, label))
        return AgentOutcome(OutcomeKind.ERROR, error=reason, exit_code=exit_code, session_id=session)
    if exit_code != 0:
        crash = classify_exit(exit_code, None)
        said = f": {run.last_plain_line}" if run.last_plain_line else ""
        return replace(crash, error=clip(crash.error + said), session_id=session)
    summary = run.result.text if run.result is not None else ""
    return AgentOutcome(OutcomeKind.DONE, summary=clip(summary), exit_code=0, session_id=session)


def fresh_session_prompt(task_prompt: str, questions: Sequence[Mapping[str, Any]], answers: Mapping[str, str]) -> str:
    """The prompt of a new session that replaces one the CLI could not resume: the task's own
    prompt, then the questions the agent asked and their answers."""
    asked = {str(question.get("id")): str(question.get("question") or "") for question in questions}
    lines = [
        task_prompt.rstrip("\n"),
        "",
        "## Answers to the questions you asked earlier",
        "Your earlier session could not be resumed; these are the answers to the questions it asked.",
    ]
    for question_id, answer in answers.items():
        question = asked.get(question_id)
        lines.append(f"- {question_id} ({question}): {answer}" if question else f"- {question_id}: {answer}")
    return "\n".join(lines) + "\n"


def run_outcome(provider: str, files: AgentFiles, exit_code: int | None, now: datetime) -> AgentOutcome:
    """Reads a finished run from its files (signal file, the offset at which its output began, the
    output) and classifies it: the policy above for a built-in CLI (its adapter reads the output),
    `classify_exit` for any other provider. The output can be large: call it off the event loop."""
    signal_text = files.read_signal()
    cli = clis.adapter(provider)
    if cli is None:
        return classify_exit(exit_code, signal_text)
    try:
        written = datetime.fromtimestamp(files.output.stat().st_mtime).astimezone()
    except OSError:
        written = now.astimezone()
    # Wall-clock resets ("resets 4pm") are relative to when the CLI wrote them, not to now.
    run = cli.summarize(files.output, shim.run_start_offset(files.control), min(written, now.astimezone()))
    return claude_outcome(exit_code, signal_text, run, now, cli.label)
