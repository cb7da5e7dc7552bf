"""The interface every built-in agent CLI's adapter implements (see clis/__init__.py for how to add
one). An adapter holds no state: it answers questions about its CLI, and reads a run's output."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from orchestrator_service.agents.stream_json import RunSummary

# The orchestrator's flag saying the agents run in a sandbox of the person's own (sandbox.py).
AGENTS_IN_SANDBOX_FLAG = "--agents-in-sandbox"
# Set by cw on every run, whatever the CLI: a value inherited from wherever the orchestrator was
# started never reaches any provider (Claude Code reads it; sandbox.py).
SANDBOX_VARIABLE = "IS_SANDBOX"


class PromptInput(StrEnum):
    """How the prompt reaches the CLI. The shim always gives the prompt file on standard input."""

    STDIN = "stdin"
    # In the command line (`RunRequest.prompt`): visible in the process list, so only for CLIs
    # that cannot read standard input.
    ARGUMENT = "argument"


class SessionOrigin(StrEnum):
    """Who names a run's session."""

    # cw picks the id up front (the agent's `session_id`) and passes it (Claude's `--session-id`).
    CW = "cw"
    # The CLI assigns it and prints it (Codex's `thread.started {thread_id}`): `summarize` reads it,
    # cw stores it on the agent as its `session_id`, and a resume passes it back.
    CLI = "cli"


@dataclass(frozen=True)
class RunRequest:
    """One run of a CLI, as the launcher knows it."""

    session_id: str
    resume: bool
    prompt: str = ""
    # `--agents-in-sandbox`: the agents run in the person's own sandbox (sandbox.py).
    in_sandbox: bool = False
    # How often the CLI itself retries a refused API request (`--claude-max-retries`).
    max_retries: int = 1
    # Under an account: the account's credentials only, none inherited.
    under_account: bool = False
    # The run's private config directory, where its account's files are (None: the CLI's own).
    config_dir: Path | None = None


class Cli(ABC):
    """One agent CLI. Subclasses set the class attributes and implement the abstract methods."""

    # The provider's name (`Account.provider`, `--provider NAME=...`, `--default-provider`).
    name: ClassVar[str]
    # For messages: "Claude Code", "Codex".
    label: ClassVar[str]
    # The program run when no `--provider NAME=COMMAND` names another.
    program: ClassVar[str]
    prompt_input: ClassVar[PromptInput] = PromptInput.STDIN
    session_origin: ClassVar[SessionOrigin] = SessionOrigin.CW
    # Where the CLI takes a credential from before its config directory: a run under an account
    # gets none of these from the orchestrator's environment, or the orchestrator's key would be
    # what every account's run spends.
    credential_variables: ClassVar[tuple[str, ...]] = ()
    # The variable naming the CLI's config directory, set to the run's private one under an account.
    config_dir_variable: ClassVar[str]
    # Files `account_files` writes that hold a credential: removed after every run (session
    # transcripts stay, a resume needs them; `account_files` writes them again on resume).
    secret_files: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def arguments(self, run: RunRequest) -> list[str]:
        """What follows the program (and any arguments `--provider` gave) for this run."""

    def environment(self, env: Mapping[str, str], run: RunRequest) -> dict[str, str]:
        """The run's environment from cw's (`env`, IS_SANDBOX already removed): under an account,
        the config directory variable set and the credential variables removed."""
        result = dict(env)
        if run.under_account:
            for name in self.credential_variables:
                result.pop(name, None)
        if run.config_dir is not None:
            result[self.config_dir_variable] = str(run.config_dir)
        return result

    @abstractmethod
    def account_files(self, config_json: str, credentials: str) -> dict[str, str]:
        """The files (name relative to the run's config directory: text) an account's secrets
        become; empty secrets write nothing."""

    @abstractmethod
    def summarize(self, output: Path, start: int, now: datetime) -> RunSummary:
        """What the run whose output begins at byte `start` of `output` said: its session, final
        result, limit, unknown session, refused credential. `now` is when the output was written
        (limit messages may name wall-clock times). Never raises on any content."""

    def blocked_reason(self, is_root: bool, in_sandbox: bool) -> str | None:
        """Why a run cannot start now (None: it can); `is_root`: the agent itself would run as
        root (outside cw's sandbox). A task waiting on this spends no attempt."""
        return None
