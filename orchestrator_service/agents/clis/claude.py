"""Claude Code (`claude -p --output-format stream-json`): its prompt on standard input, a session id
cw picks (`--session-id`, `--resume`), its account's `.claude.json` and `.credentials.json` in
`CLAUDE_CONFIG_DIR`, its output read by stream_json.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from orchestrator_service.agents.clis.base import (
    AGENTS_IN_SANDBOX_FLAG,
    SANDBOX_VARIABLE,
    Cli,
    PromptInput,
    RunRequest,
    SessionOrigin,
)
from orchestrator_service.agents.stream_json import RunSummary, summarize_file

NAME = "claude"
CONFIG_FILE = ".claude.json"
CREDENTIALS_FILE = ".credentials.json"
# How often the CLI itself retries a request the API refused (429, 529, 5xx, no connection). Its
# own default (10, with back-off) holds a slot for minutes before cw sees anything; cw's policy
# (an account's rest, the task's retries) decides instead.
MAX_RETRIES_VARIABLE = "CLAUDE_CODE_MAX_RETRIES"
DEFAULT_MAX_RETRIES = 1


def blocked_reason(is_root: bool, in_sandbox: bool) -> str | None:
    """Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1, which cw
    sets only with --agents-in-sandbox."""
    if is_root and not in_sandbox:
        return (
            "Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1; "
            f"start the orchestrator with {AGENTS_IN_SANDBOX_FLAG} if its agents run in a sandbox, "
            "or run it as another user"
        )
    return None


class Claude(Cli):
    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Claude Code"
    program: ClassVar[str] = "claude"
    prompt_input: ClassVar[PromptInput] = PromptInput.STDIN
    session_origin: ClassVar[SessionOrigin] = SessionOrigin.CW
    credential_variables: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
    )
    config_dir_variable: ClassVar[str] = "CLAUDE_CONFIG_DIR"
    secret_files: ClassVar[tuple[str, ...]] = (CREDENTIALS_FILE,)

    def arguments(self, run: RunRequest) -> list[str]:
        flags = ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
        session = ["--resume", run.session_id] if run.resume else ["--session-id", run.session_id]
        return [*flags, *session]

    def environment(self, env: Mapping[str, str], run: RunRequest) -> dict[str, str]:
        """IS_SANDBOX=1 only with --agents-in-sandbox; the CLI's own retries are `max_retries`."""
        result = super().environment(env, run)
        if run.in_sandbox:
            result[SANDBOX_VARIABLE] = "1"
        result[MAX_RETRIES_VARIABLE] = str(run.max_retries)
        return result

    def account_files(self, config_json: str, credentials: str) -> dict[str, str]:
        files = {}
        if config_json:
            files[CONFIG_FILE] = config_json
        if credentials:
            files[CREDENTIALS_FILE] = credentials
        return files

    def summarize(self, output: Path, start: int, now: datetime) -> RunSummary:
        return summarize_file(output, now, start)

    def blocked_reason(self, is_root: bool, in_sandbox: bool) -> str | None:
        return blocked_reason(is_root, in_sandbox)
