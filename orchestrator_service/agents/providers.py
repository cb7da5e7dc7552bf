"""Provider command lines: the real Claude Code CLI, or any `NAME=COMMAND` from the command line."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

CLAUDE = "claude"
# Claude Code refuses --dangerously-skip-permissions as root unless this is exactly "1".
SANDBOX_VARIABLE = "IS_SANDBOX"


@dataclass(frozen=True)
class Provider:
    name: str
    argv: tuple[str, ...]
    # Set by --agents-in-sandbox: the agents run in a sandbox, so Claude Code may run as root.
    in_sandbox: bool = False

    def command(self, session_id: str, resume: bool) -> list[str]:
        """Claude Code gets its session, resume and output flags, and reads its prompt on standard
        input (the shim gives it the prompt file); other providers read the CW_* environment and
        get their command as given."""
        if self.name != CLAUDE:
            return list(self.argv)
        flags = ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
        session = ["--resume", session_id] if resume else ["--session-id", session_id]
        return [*self.argv, *flags, *session]

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The agent's environment. IS_SANDBOX says only what --agents-in-sandbox says: a value
        inherited from wherever the orchestrator was started never reaches any provider."""
        env = dict(base)
        env.pop(SANDBOX_VARIABLE, None)
        if self.name == CLAUDE and self.in_sandbox:
            env[SANDBOX_VARIABLE] = "1"
        return env

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


def parse_provider(spec: str, in_sandbox: bool = False) -> Provider:
    """`NAME=COMMAND`, COMMAND split like a shell would split it, never run through a shell."""
    name, separator, command = spec.partition("=")
    argv = tuple(shlex.split(command))
    if not separator or not name.strip() or not argv:
        raise ValueError(f"--provider wants NAME=COMMAND, got {spec!r}")
    return Provider(name.strip(), argv, in_sandbox and name.strip() == CLAUDE)


def provider_table(
    specs: list[str] | None = None, in_sandbox: bool = False, directory: Path | None = None
) -> dict[str, Provider]:
    """Claude Code, and the `--provider` commands; relative paths resolved against `directory`."""
    providers = {CLAUDE: Provider(CLAUDE, (CLAUDE,), in_sandbox)}
    for spec in specs or []:
        provider = parse_provider(spec, in_sandbox)
        providers[provider.name] = provider.resolved(directory) if directory is not None else provider
    return providers
