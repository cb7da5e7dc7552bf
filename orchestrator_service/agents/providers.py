"""Provider command lines: the built-in CLIs (clis/), or any `NAME=COMMAND` from the command line."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator_service.agents import clis
from orchestrator_service.agents.clis import claude
from orchestrator_service.agents.clis.base import SANDBOX_VARIABLE, Cli, RunRequest

CLAUDE = claude.NAME
DEFAULT_CLAUDE_MAX_RETRIES = claude.DEFAULT_MAX_RETRIES
# Kept under their old names: the Claude adapter owns them now (clis/claude.py).
CREDENTIAL_VARIABLES = claude.Claude.credential_variables
MAX_RETRIES_VARIABLE = claude.MAX_RETRIES_VARIABLE
__all__ = ["CLAUDE", "CREDENTIAL_VARIABLES", "MAX_RETRIES_VARIABLE", "SANDBOX_VARIABLE", "Provider", "provider_table"]


@dataclass(frozen=True)
class Provider:
    name: str
    argv: tuple[str, ...]
    # Set by --agents-in-sandbox for the built-in CLIs: the agents run in a sandbox (Claude Code
    # may run as root).
    in_sandbox: bool = False
    # How often the built-in CLI itself retries a refused request (`--claude-max-retries`).
    max_retries: int = DEFAULT_CLAUDE_MAX_RETRIES

    @property
    def cli(self) -> Cli | None:
        """The built-in CLI this provider runs (by its name); None: a generic provider."""
        return clis.adapter(self.name)

    def run_request(
        self,
        session_id: str,
        resume: bool,
        prompt: str = "",
        *,
        under_account: bool = False,
        config_dir: Path | None = None,
    ) -> RunRequest:
        return RunRequest(session_id, resume, prompt, self.in_sandbox, self.max_retries, under_account, config_dir)

    def command(self, session_id: str, resume: bool, prompt: str = "") -> list[str]:
        """A built-in CLI gets its session, resume and output flags from its adapter; other
        providers read the CW_* environment and get their command as given."""
        cli = self.cli
        if cli is None:
            return list(self.argv)
        return [*self.argv, *cli.arguments(self.run_request(session_id, resume, prompt))]

    def environment(
        self, base: Mapping[str, str], under_account: bool = False, config_dir: Path | None = None
    ) -> dict[str, str]:
        """The agent's environment. IS_SANDBOX says only what --agents-in-sandbox says: a value
        inherited from wherever the orchestrator was started never reaches any provider. A
        built-in CLI's run under an account uses that account's credentials only (no inherited
        key: its adapter says which variables), in `config_dir` when given."""
        env = dict(base)
        env.pop(SANDBOX_VARIABLE, None)
        cli = self.cli
        if cli is None:
            return env
        return cli.environment(env, self.run_request("", False, under_account=under_account, config_dir=config_dir))

    def resolved(self, directory: Path) -> Provider:
        """Agents run in their own work directory: a program or script named by a relative path
        is made absolute against `directory` (where the orchestrator was started) when that names
        an existing file. Bare program names stay for PATH to find."""

        def absolute(argument: str, program: bool) -> str:
            path = Path(argument)
            relative = not path.is_absolute() and (not program or len(path.parts) > 1)
            if relative and not argument.startswith("-") and (directory / path).is_file():
                return str((directory / path).resolve())
            return argument

        argv = (absolute(self.argv[0], True), *(absolute(argument, False) for argument in self.argv[1:]))
        return replace(self, argv=argv)

    def missing_program(self) -> str | None:
        """Why this provider cannot run here, or None: its program is neither a file nor on PATH."""
        if shutil.which(self.argv[0]) is None:
            return f"provider {self.name!r}: program {self.argv[0]!r} not found"
        return None


def parse_provider(spec: str, in_sandbox: bool = False, max_retries: int = DEFAULT_CLAUDE_MAX_RETRIES) -> Provider:
    """`NAME=COMMAND`, COMMAND split like a shell would split it, never run through a shell."""
    name, separator, command = spec.partition("=")
    argv = tuple(shlex.split(command))
    if not separator or not name.strip() or not argv:
        raise ValueError(f"--provider wants NAME=COMMAND, got {spec!r}")
    return Provider(name.strip(), argv, in_sandbox and clis.adapter(name.strip()) is not None, max_retries)


def provider_table(
    specs: list[str] | None = None,
    in_sandbox: bool = False,
    directory: Path | None = None,
    claude_max_retries: int = DEFAULT_CLAUDE_MAX_RETRIES,
) -> dict[str, Provider]:
    """Every built-in CLI (its usual program name), and the `--provider` commands (which replace a
    built-in's program when they share its name); relative paths resolved against `directory`."""
    providers = {
        name: Provider(name, (cli.program,), in_sandbox, claude_max_retries) for name, cli in clis.BUILT_IN.items()
    }
    for spec in specs or []:
        provider = parse_provider(spec, in_sandbox, claude_max_retries)
        providers[provider.name] = provider.resolved(directory) if directory is not None else provider
    return providers
