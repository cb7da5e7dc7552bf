"""Provider command lines: the real Claude Code CLI, or any `NAME=COMMAND` from the command line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

CLAUDE = "claude"


@dataclass(frozen=True)
class Provider:
    name: str
    argv: tuple[str, ...]

    def command(self, session_id: str, resume: bool, prompt: str) -> list[str]:
        """Claude Code gets its session, resume and output flags; other providers read the CW_*
        environment and get their command as given."""
        if self.name != CLAUDE:
            return list(self.argv)
        flags = ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
        session = ["--resume", session_id] if resume else ["--session-id", session_id]
        return [*self.argv, *flags, *session, prompt]


def parse_provider(spec: str) -> Provider:
    """`NAME=COMMAND`, COMMAND split like a shell would split it, never run through a shell."""
    name, separator, command = spec.partition("=")
    argv = tuple(shlex.split(command))
    if not separator or not name.strip() or not argv:
        raise ValueError(f"--provider wants NAME=COMMAND, got {spec!r}")
    return Provider(name.strip(), argv)


def provider_table(specs: list[str] | None = None) -> dict[str, Provider]:
    providers = {CLAUDE: Provider(CLAUDE, (CLAUDE,))}
    for spec in specs or []:
        provider = parse_provider(spec)
        providers[provider.name] = provider
    return providers
