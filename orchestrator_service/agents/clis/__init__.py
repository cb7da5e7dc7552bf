"""The agent CLIs cw knows without a `--provider` flag, one adapter each, and their table.

A provider whose name is in `BUILT_IN` runs that CLI: `--provider NAME=COMMAND` only changes the
program (and may add arguments before the adapter's). Any other provider is generic: its command
runs as given and follows cw's own protocol (CW_* environment, the signal file; README, "The agent
protocol"); its exit and signal file alone decide its outcome.

What an adapter (`base.Cli`) answers, and who asks:

- `arguments(run)`: the command line after the program, for a new run and for a resume
  (`providers.Provider.command`). The shim gives the prompt file on standard input
  (`prompt_input` STDIN); a CLI that takes it only as an argument reads `run.prompt`.
- `session_origin`: CW when cw picks the session id up front (Claude's `--session-id`), CLI when
  the CLI assigns it (Codex's `thread_id`): then `summarize` reports it, and cw stores it on the
  agent as `session_id` (outcomes.py) for the resume.
- `environment(env, run)`: the run's environment; under an account (`run.config_dir` set) the
  variable naming the CLI's config directory points at the run's private one, and the inherited
  `credential_variables` are removed (launcher.environment).
- `account_files(config_json, credentials)`: what an account's secrets (`Account.config_json`,
  `Account.credentials`) become in that directory (launcher.start); `secret_files` of every
  built-in CLI are removed after each run (launcher.remove_credentials).
- `summarize(output, start, now) -> RunSummary`: the run's output read back (stream_json.py's
  `RunSummary`, `FinalResult`, `Limit`): session id, final result text or error, a limit with its
  reset (`rate_limited`: the account rests, no attempt spent), an unknown session on resume
  (`unknown_session`: a fresh session with the prompt plus answers), a refused credential (a
  `FinalResult` with `is_error` and `api_error_status` 401: the account is set aside). The policy
  turning it into an outcome is the same for every CLI (claude_outcome.py).
- `blocked_reason(is_root, in_sandbox)`: why a run cannot start here (Claude Code as root).

Usage (tokens, cost) is read by usage.py from the same output, recognising each CLI's events by
their `type`: a new CLI adds its event shapes to `UsageReader._event`.

To add a CLI: write `clis/NAME.py` with a `Cli` subclass (see claude.py and codex.py), add it to
`BUILT_IN` below, add fixtures of its real output under tests/fixtures/transcripts/ and tests of
its `summarize` that feed it garbage too, and a README section (install, accounts, what cw sets,
what it reads).
"""

from __future__ import annotations

from orchestrator_service.agents.clis.base import Cli, PromptInput, RunRequest, SessionOrigin
from orchestrator_service.agents.clis.claude import Claude
from orchestrator_service.agents.clis.codex import Codex
from orchestrator_service.agents.clis.gemini import Gemini
from orchestrator_service.agents.clis.opencode import OpenCode

BUILT_IN: dict[str, Cli] = {cli.name: cli for cli in (Claude(), Codex(), Gemini(), OpenCode())}


def adapter(provider: str) -> Cli | None:
    """The built-in CLI a provider of this name runs; None: a generic provider."""
    return BUILT_IN.get(provider)


def secret_files() -> tuple[str, ...]:
    """Every credential file any built-in CLI writes into a run's config directory."""
    return tuple(dict.fromkeys(name for cli in BUILT_IN.values() for name in cli.secret_files))


__all__ = ["BUILT_IN", "Cli", "PromptInput", "RunRequest", "SessionOrigin", "adapter", "secret_files"]
