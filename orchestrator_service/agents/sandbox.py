"""Claude Code as root: it refuses `--dangerously-skip-permissions` under uid 0 unless IS_SANDBOX=1
says the machine is a sandbox. cw runs its agents with that flag, so as root it asks the person who
starts it to say so (`--agents-in-sandbox`) rather than deciding for them, and says why when it
cannot run claude. Pure: the caller tells whether it runs as root.
"""

from __future__ import annotations

import os

from orchestrator_service.agents.providers import CLAUDE

FLAG = "--agents-in-sandbox"


def running_as_root() -> bool:
    return os.geteuid() == 0


def claude_blocked_reason(is_root: bool, in_sandbox: bool) -> str | None:
    """Why a claude run cannot start now (None: it can). A task waiting on this spends no attempt."""
    if is_root and not in_sandbox:
        return (
            "Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1; "
            f"start the orchestrator with {FLAG} if its agents run in a sandbox, or run it as another user"
        )
    return None


def startup_refusal(default_provider: str, is_root: bool, in_sandbox: bool) -> str | None:
    """One line saying why the orchestrator will not start (None: it may)."""
    if default_provider != CLAUDE:
        return None
    reason = claude_blocked_reason(is_root, in_sandbox)
    return f"refusing to start as root with claude as the default provider: {reason}" if reason else None
