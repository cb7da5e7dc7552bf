"""The agent's sandbox (README, "What an agent can and cannot do"): every run in a bubblewrap
sandbox of its own, unless the person says the agents already run in one of theirs (`--agents-in-sandbox`).

Inside, the agent is an unprivileged user (uid 1000 in a user namespace of its own, with no
capability), sees the system read-only, writes only its run's work directory (its git
repositories), its own config directory (its HOME), its outbox (the signal file) and a private
/tmp, and sees nothing else of cw: neither cw's home (tokens, secrets key, database, logs), nor the
other agents' directories, nor the orchestrator's clones (only their object stores, read-only, which
its repositories borrow from), nor the user's repositories. Its processes live in a pid namespace
of their own: they cannot see or signal anything outside, and all end with the run. The network
stays on (the model's API) unless `--agent-network off`, which leaves the agent only a loopback
of its own.

The shim stays outside (it records how the run ended and outlives the orchestrator): it runs
bwrap, which runs the agent. The shim leads its own session without a terminal and bwrap starts
no new one, so the agent stays in the shim's process group: StopAgent and fencing signal that
group as before, and the pid the shim records is its own, in the orchestrator's pid namespace.
`--die-with-parent` ties the sandbox to the shim (its parent), never to the orchestrator.

Claude Code refuses `--dangerously-skip-permissions` as root unless IS_SANDBOX=1: inside cw's
sandbox it is not root, so it needs nothing; with `--agents-in-sandbox` cw sets IS_SANDBOX=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from orchestrator_service.agents import clis
from orchestrator_service.agents.clis import claude
from orchestrator_service.agents.clis.base import AGENTS_IN_SANDBOX_FLAG
from orchestrator_service.agents.providers import Provider

FLAG = AGENTS_IN_SANDBOX_FLAG
PATH_FLAG = "--agent-path"
NETWORK_FLAG = "--agent-network"
BWRAP = "bwrap"
# The shim starts bwrap with SIGTERM ignored (shim.py); the agent gets its default back, so that a
# stop reaches the agent alone and it ends as it chooses.
DEFAULT_TERM = ("env", "--default-signal=TERM")
# The agent's uid and gid inside its user namespace: an ordinary user's.
SANDBOX_UID = 1000
SANDBOX_USER = "agent"
# The system, seen read-only: the top-level directories programs and their libraries live in.
SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
# Where some systems keep what /etc/resolv.conf points to.
RESOLVER_DIRECTORIES = ("/run/systemd/resolve", "/run/resolvconf")
# Files of /etc no agent reads: in the user namespace every file of the orchestrator's user is the
# agent's own, so a file only that user may read must be covered.
SECRET_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
SECRET_DIRECTORIES = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d")


class Network(StrEnum):
    ON = "on"
    OFF = "off"


class Mode(StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"


@dataclass(frozen=True)
class AgentPath:
    """`--agent-path PATH[:ro|:rw]`: more of the machine for every agent."""

    path: Path
    mode: Mode = Mode.READ_ONLY


def provider_files(providers: Iterable[Provider], given: Iterable[AgentPath] = ()) -> tuple[AgentPath, ...]:
    """The files the providers' commands name (an agent's own script, `python3 my_agent.py`),
    read-only in the sandbox: without them the command could not start there. Files under the
    system directories, or under a path already given, are in it already."""
    covered = [*(Path(name) for name in SYSTEM_DIRECTORIES), *(extra.path for extra in given)]
    found: dict[Path, None] = {}
    for provider in providers:
        for argument in provider.argv:
            path = Path(argument)
            if path.is_absolute() and path.is_file() and not any(path.is_relative_to(top) for top in covered):
                found[path] = None
    return tuple(AgentPath(path, Mode.READ_ONLY) for path in found)


def parse_agent_path(spec: str) -> AgentPath:
    """Only a trailing `:ro` or `:rw` is a mode; any other colon belongs to the path."""
    path, mode = spec, Mode.READ_ONLY
    for candidate in Mode:
        if spec.endswith(f":{candidate.value}"):
            path, mode = spec[: -len(candidate.value) - 1], candidate
    if not path:
        raise ValueError(f"{PATH_FLAG} wants PATH, PATH:ro or PATH:rw, got {spec!r}")
    return AgentPath(Path(path).expanduser().absolute(), mode)


@dataclass(frozen=True)
class SandboxPolicy:
    """How cw sandboxes its agents; `enabled` False: the person's sandbox holds them already."""

    enabled: bool = True
    network: Network = Network.ON
    paths: tuple[AgentPath, ...] = ()
    # Places no agent sees even under an `--agent-path` that holds them (cw's home, its tokens).
    hidden: tuple[Path, ...] = ()
    # prlimit's limits inside the sandbox (None: none): see README, "What an agent can and cannot do".
    max_memory_bytes: int | None = None
    max_processes: int | None = None


@dataclass(frozen=True)
class RunMounts:
    """What one run sees of its own: written by the orchestrator before the run starts."""

    writable: tuple[Path, ...]
    readable: tuple[Path, ...]
    home: Path
    cwd: Path
    # Files bound over /etc/passwd and /etc/group: the agent's own user, nothing of the host's.
    passwd: Path
    group: Path
    extra: tuple[str, ...] = field(default_factory=tuple)


def system_mounts(root: Path = Path("/")) -> list[str]:
    """bwrap arguments for the read-only system: symlinks (a merged /usr) kept as symlinks."""
    arguments: list[str] = []
    for name in SYSTEM_DIRECTORIES:
        path = root / name.lstrip("/")
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), name]
    for name in RESOLVER_DIRECTORIES:
        if (root / name.lstrip("/")).is_dir():
            arguments += ["--ro-bind", name, name]
    for name in SECRET_FILES:
        if (root / name.lstrip("/")).exists():
            arguments += ["--ro-bind", "/dev/null", name]
    for name in SECRET_DIRECTORIES:
        if (root / name.lstrip("/")).is_dir():
            arguments += ["--tmpfs", name]
    return arguments


def _limits(policy: SandboxPolicy) -> list[str]:
    limits = []
    if policy.max_memory_bytes:
        limits.append(f"--as={policy.max_memory_bytes}")
    if policy.max_processes:
        limits.append(f"--nproc={policy.max_processes}")
    return ["prlimit", *limits, "--"] if limits else []


PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))


def _tops_in_private_tmp(paths: Sequence[Path]) -> list[Path]:
    """The directories right under the private /tmp that hold a mounted path: each gets a tmpfs of
    its own, made read-only once mounted on, so that the directories bwrap makes there to hold
    the mounts cannot be written (the rest of /tmp stays the agent's)."""
    tops = set()
    for path in paths:
        for tmp in PRIVATE_TMP:
            if path.is_relative_to(tmp) and path != tmp:
                tops.add(tmp / path.relative_to(tmp).parts[0])
    return sorted(tops)


def bwrap_command(policy: SandboxPolicy, run: RunMounts, command: Sequence[str], system: Sequence[str]) -> list[str]:
    """The command that runs `command` in the run's sandbox. Order matters to bwrap: later mounts
    cover earlier ones, so the system and the person's paths come first, then what must stay
    hidden under them, then the run's own directories."""
    arguments = [BWRAP, "--die-with-parent", "--unshare-all", "--unshare-user"]
    if policy.network == Network.ON:
        arguments.append("--share-net")
    arguments += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "cw-agent", "--cap-drop", "ALL"]
    arguments += [*system, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    tops = _tops_in_private_tmp([*run.readable, *run.writable, *(extra.path for extra in policy.paths)])
    for top in tops:
        arguments += ["--tmpfs", str(top)]
    arguments += ["--ro-bind", str(run.passwd), "/etc/passwd", "--ro-bind", str(run.group), "/etc/group"]
    for extra in policy.paths:
        arguments += ["--bind" if extra.mode == Mode.READ_WRITE else "--ro-bind", str(extra.path), str(extra.path)]
    for hidden in policy.hidden:
        if any(hidden.is_relative_to(extra.path) for extra in policy.paths):
            arguments += ["--tmpfs", str(hidden)]
    for path in run.readable:
        arguments += ["--ro-bind-try", str(path), str(path)]
    for path in run.writable:
        arguments += ["--bind", str(path), str(path)]
    arguments += ["--setenv", "HOME", str(run.home), "--setenv", "TMPDIR", "/tmp", "--setenv", "USER", SANDBOX_USER]
    # The directories bwrap made to hold those mounts stay read-only: nothing written there.
    for top in tops:
        arguments += ["--remount-ro", str(top)]
    arguments += ["--remount-ro", "/", *run.extra, "--chdir", str(run.cwd), "--", *DEFAULT_TERM, *_limits(policy)]
    return [*arguments, *command]


def account_files(home: Path) -> tuple[str, str]:
    """/etc/passwd and /etc/group as the agent sees them."""
    passwd = f"root:x:0:0:root:/root:/bin/sh\n{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:cw agent:{home}:/bin/sh\n"
    group = f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_UID}:\n"
    return passwd, group


def cannot_sandbox() -> str | None:
    """Why bwrap cannot run a sandbox here (None: it can): tried once, at start."""
    program = shutil.which(BWRAP)
    if program is None:
        return "bubblewrap (bwrap) is not installed"
    probe = [program, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--die-with-parent"]
    probe += [*system_mounts(), "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot run here: {error}"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["exit status " + str(result.returncode)])[-1]
        return f"bubblewrap cannot make a sandbox here: {detail}"
    return None


def sandbox_refusal(policy: SandboxPolicy, reason: str | None) -> str | None:
    """The one line the orchestrator stops with when it must sandbox its agents and cannot."""
    if not policy.enabled or reason is None:
        return None
    return (
        f"cannot run agents in a sandbox: {reason}; install bubblewrap (apt-get install bubblewrap) "
        f"or pass {FLAG} if the agents already run in a sandbox of yours"
    )


def running_as_root() -> bool:
    return os.geteuid() == 0


def agent_is_root(policy: SandboxPolicy) -> bool:
    """Inside cw's sandbox the agent is an ordinary user, whoever runs the orchestrator."""
    return running_as_root() and not policy.enabled


def claude_blocked_reason(is_root: bool, in_sandbox: bool) -> str | None:
    """Why a claude run cannot start now (None: it can). A task waiting on this spends no attempt.
    `is_root`: the agent itself would run as root (outside cw's sandbox). clis/claude.py says it."""
    return claude.blocked_reason(is_root, in_sandbox)


def startup_refusal(default_provider: str, is_root: bool, in_sandbox: bool) -> str | None:
    """One line saying why the orchestrator will not start (None: it may)."""
    cli = clis.adapter(default_provider)
    reason = cli.blocked_reason(is_root, in_sandbox) if cli is not None else None
    return f"refusing to start as root with {default_provider} as the default provider: {reason}" if reason else None
