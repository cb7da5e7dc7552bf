"""Everything an agent process is started with: prompt, account config, environment, command."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from cw.store.v1 import account_pb2, agent_pb2
from cw_edge.tokens import AUTH_ENVIRONMENT
from orchestrator_service.agents import clis, control_files, sandbox, supervisor
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.sandbox import SandboxPolicy
from orchestrator_service.agents.supervisor import AgentFiles


class CommitIdentity(Protocol):
    """Who a run's commits name (git/checkpoints.py's `Identity`): only read here, so the agents
    package need not import git's."""

    @property
    def name(self) -> str: ...

    @property
    def email(self) -> str: ...


def identity_environment(identity: CommitIdentity) -> dict[str, str]:
    """What makes a plain `git commit` work without any git configuration (and name the agent)."""
    return {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }


@dataclass(frozen=True)
class Launch:
    agent: agent_pb2.Agent
    files: AgentFiles
    provider: Provider
    mode: str
    prompt: str
    resume: bool = False
    secrets: account_pb2.GetAccountSecretsResponse | None = None
    # Variables some runs add (a planning run's CW_TARGET_ID).
    environment: Mapping[str, str] = field(default_factory=dict)
    # Where the run works (its project's worktree, or the directory holding several), each
    # project's worktree by name (CW_WORKTREES), and who its commits name (controllers/agent_runs/workdirs.py).
    cwd: Path | None = None
    worktrees: Mapping[str, Path] = field(default_factory=dict)
    identity: CommitIdentity | None = None
    # cw's sandbox (sandbox.py); disabled: the person's sandbox holds the agents already.
    sandbox: SandboxPolicy = field(default_factory=lambda: SandboxPolicy(enabled=False))
    # What the run reads besides its own files: the object stores its repositories borrow from.
    readable: tuple[Path, ...] = ()
    # What the run writes in its sandbox besides its own files: its task's directory and each
    # project's repository in it, each a mount of its own (which the agent can neither move nor
    # replace with a symlink); none: its work directory.
    writable: tuple[Path, ...] = ()


def _write_private(path: Path, text: str) -> None:
    """Never through a symlink an agent left in place of the file (control_files.py)."""
    control_files.write_private(path, text)


def _write_account_file(config_dir: Path, name: str, text: str) -> None:
    """`name` (relative: `.gemini/settings.json`, `.config/opencode/opencode.json`) in the run's
    config directory, the directories on its way made private; a symlink an agent left anywhere on
    the way is refused, never followed (each directory is opened without following one)."""
    control_files.make_directories(config_dir, Path(name).parent)
    _write_private(config_dir / name, text)


def _remove_account_file(config_dir: Path, name: str) -> None:
    """Removed from its own directory, never through a symlink an agent put anywhere on the way."""
    control_files.unlink_beneath(config_dir, Path(name))


def environment(launch: Launch) -> dict[str, str]:
    files, agent = launch.files, launch.agent
    # An agent gets no credential for cw's services, nor a pointer to one.
    inherited = {name: value for name, value in os.environ.items() if name not in AUTH_ENVIRONMENT}
    env = {
        **inherited,
        "CW_AGENT_ID": agent.id,
        "CW_AGENT_NAME": agent.name,
        "CW_TASK_ID": agent.task_id,
        "CW_INITIATIVE_ID": agent.initiative_id,
        "CW_MODE": launch.mode,
        "CW_PROMPT_FILE": str(files.prompt),
        "CW_SIGNAL_FILE": str(files.signal),
        "CW_SESSION_ID": agent.session_id,
        "CW_RESUME": "1" if launch.resume else "0",
        **(identity_environment(launch.identity) if launch.identity else {}),
        "CW_WORKTREES": json.dumps({name: str(path) for name, path in launch.worktrees.items()}),
        **launch.environment,
    }
    if launch.resume:
        env["CW_ANSWERS_FILE"] = str(files.answers)
    under_account = launch.secrets is not None
    config_dir = files.config_dir if under_account else None
    return launch.provider.environment(env, under_account=under_account, config_dir=config_dir)


def start(launch: Launch) -> subprocess.Popen[bytes]:
    """Writes the agent's files and starts it under the shim, which gives it the prompt file on
    standard input."""
    files = launch.files
    supervisor.make_private_dirs(files)
    _write_private(files.prompt, launch.prompt)
    cli = launch.provider.cli
    if launch.secrets is not None and cli is not None:
        files.config_dir.mkdir(mode=0o700, exist_ok=True)
        if files.config_dir.is_symlink():
            raise control_files.UnsafeControlFile("config: a symlink, not a directory")
        for name, text in cli.account_files(launch.secrets.config_json, launch.secrets.credentials).items():
            _write_account_file(files.config_dir, name, text)
    command = launch.provider.command(launch.agent.session_id, launch.resume, launch.prompt)
    if launch.sandbox.enabled:
        command = sandboxed(launch, command)
    return supervisor.spawn(files, command, environment(launch), launch.cwd, launch.sandbox.max_processes)


PASSWD_FILE = "passwd"
GROUP_FILE = "group"


def sandboxed(launch: Launch, command: list[str]) -> list[str]:
    """`command` in the run's sandbox: it writes its task's directory (or its work directory), its
    config directory (its HOME) and its outbox; it reads its prompt and answers; nothing else of
    the control directory."""
    files = launch.files
    files.config_dir.mkdir(mode=0o700, exist_ok=True)
    passwd, group = sandbox.account_files(files.config_dir)
    control_files.write_private(files.control / PASSWD_FILE, passwd)
    control_files.write_private(files.control / GROUP_FILE, group)
    mounts = sandbox.RunMounts(
        writable=(*(launch.writable or (files.workdir,)), files.config_dir, files.outbox),
        readable=(files.prompt, files.answers, *launch.readable),
        home=files.config_dir,
        cwd=launch.cwd or files.workdir,
        passwd=files.control / PASSWD_FILE,
        group=files.control / GROUP_FILE,
    )
    policy = replace(launch.sandbox, hidden=tuple(path for path in launch.sandbox.hidden if path.exists()))
    return sandbox.bwrap_command(policy, mounts, command, sandbox.system_mounts())


def read_answers(files: AgentFiles) -> dict[str, str]:
    """The answers last written for the agent (none when unreadable)."""
    try:
        text = control_files.read_bytes(files.answers)
        answers = json.loads(text) if text is not None else {}
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in answers.items()} if isinstance(answers, dict) else {}


def write_answers(files: AgentFiles, answers: dict[str, str]) -> None:
    """`{"QUESTION_ID": "answer", ...}` (README, "The agent protocol")."""
    _write_private(files.answers, json.dumps(answers))


def remove_credentials(files: AgentFiles) -> None:
    """After each run: the account's credentials leave the agent's config directory (its session
    transcripts stay, a resume needs them); `start` writes them again on resume. Every built-in
    CLI's credential files, whichever ran: a file some other CLI would read is no credential left."""
    for name in clis.secret_files():
        _remove_account_file(files.config_dir, name)
