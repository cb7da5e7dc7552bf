"""Agent processes on disk: where their files live, how they start, how they are seen to end.

Each agent has a control directory `<workspace>/agents/<agent id>/` (output, prompt, signal file,
the shim's identity and exit files). A run works in its task's worktrees, `<workspace>/tasks/<task
id>/` (controllers/workdirs.py); `work/` in the control directory is the working directory of a
run without a task. The directory derives from the agent's id, never from a path stored anywhere, and is
private to the user (0700). Nothing here needs the orchestrator to have watched the process:
everything can be read back after a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from orchestrator_service.agents import process
from orchestrator_service.agents.shim import ABANDONED_FILE, EXIT_FILE, FENCE_FILE, IDENTITY_FILE, PROMPT_FILE
from orchestrator_service.paths import safe_id

# How long a freshly spawned shim may take to record who it is before it counts as vanished.
START_GRACE_SECONDS = 15.0


class Liveness(Enum):
    RUNNING = "running"
    EXITED = "exited"
    VANISHED = "vanished"


@dataclass(frozen=True)
class Observation:
    liveness: Liveness
    exit_code: int | None = None
    # The shim saw the run abandoned before starting anything (see `abandon`).
    abandoned: bool = False
    # The shim ended the run: its orchestrator's lease was not renewed in time (shim.py, the fence).
    fenced: bool = False


@dataclass(frozen=True)
class AgentFiles:
    control: Path

    @classmethod
    def of(cls, workspace: Path, agent_id: str) -> AgentFiles:
        return cls(workspace / "agents" / safe_id(agent_id, "agent id"))

    @property
    def fence(self) -> Path:
        """The workspace's fence file, which every agent's shim reads (shim.py)."""
        return fence_file(self.control.parent.parent)

    @property
    def workdir(self) -> Path:
        return self.control / "work"

    @property
    def output(self) -> Path:
        return self.control / "output.jsonl"

    @property
    def prompt(self) -> Path:
        return self.control / PROMPT_FILE

    @property
    def signal(self) -> Path:
        return self.control / "signal.json"

    @property
    def answers(self) -> Path:
        return self.control / "answers.json"

    @property
    def config_dir(self) -> Path:
        return self.control / "config"

    def read_signal(self) -> str | None:
        try:
            return self.signal.read_text()
        except FileNotFoundError:
            return None

    def session_number(self) -> int:
        """1 for the first run, previous + 1 after each resume (counted by the archived runs)."""
        return len(list(self.control.glob("exit.*.json"))) + 1

    def archive_session(self) -> None:
        """Before a resume: the previous run's signal and exit files must not be read again."""
        number = self.session_number()
        for path in (self.signal, self.control / EXIT_FILE, self.control / IDENTITY_FILE):
            if path.exists():
                os.replace(path, path.with_name(f"{path.stem}.{number}{path.suffix}"))


def fence_file(workspace: Path) -> Path:
    return workspace / FENCE_FILE


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_private_dirs(files: AgentFiles) -> None:
    """The control and work directories, readable by the user alone."""
    for directory in (files.control.parent, files.control, files.workdir):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)


def spawn(
    files: AgentFiles, command: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Starts the shim in a session of its own, so it outlives the orchestrator (as long as the
    workspace's fence lets it), in `cwd` (its task's worktree) or else its work directory."""
    make_private_dirs(files)
    fence = ["--fence", str(files.fence)]
    with files.output.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator_service.agents.shim", str(files.control), *fence, "--", *command],
            cwd=cwd or files.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def observe(files: AgentFiles, spawned_at: float) -> Observation:
    """Running, exited (with its recorded status) or vanished, from the files alone."""
    exited = _read_json(files.control / EXIT_FILE)
    if exited is not None:
        return _exited(exited)
    identity = _identity(files)
    if identity is None:
        if time.time() - spawned_at < START_GRACE_SECONDS:
            return Observation(Liveness.RUNNING)
        return Observation(Liveness.VANISHED)
    if process.is_alive(*identity):
        return Observation(Liveness.RUNNING)
    exited = _read_json(files.control / EXIT_FILE)  # it may have finished since the first look
    if exited is not None:
        return _exited(exited)
    return Observation(Liveness.VANISHED)


def _exited(recorded: dict[str, Any]) -> Observation:
    fenced = bool(recorded.get("fenced"))
    return Observation(Liveness.EXITED, recorded.get("exit_code"), bool(recorded.get("abandoned")), fenced)


def _identity(files: AgentFiles) -> tuple[int, int] | None:
    """(pid, start time) the shim recorded in the agent's own directory, if it did."""
    identity = _read_json(files.control / IDENTITY_FILE)
    try:
        return (int(identity["pid"]), int(identity.get("start_time") or -1)) if identity else None
    except (TypeError, ValueError, KeyError):
        return None


def live_process_group(files: AgentFiles) -> int | None:
    """The group of a shim that still runs (never a pid that has since been reused)."""
    identity = _identity(files)
    if identity and process.is_alive(*identity):
        return identity[0]
    return None


def kill_group(files: AgentFiles) -> None:
    """Whatever is left of a vanished agent (a provider whose shim was killed) must not keep
    working on a branch another agent is about to take. Signalled only while the group can still
    be ours: its leader alive with the recorded start time, or gone (a group id stays reserved
    while any member lives, so then only the agent's own processes carry it)."""
    identity = _identity(files)
    if identity is not None and process.group_is_ours(*identity):
        process.signal_group(identity[0], signal.SIGKILL)


def abandon(files: AgentFiles) -> bool:
    """Marks a run whose shim never recorded itself as abandoned; True when it never started.

    The shim writes its identity, then checks for this mark before starting the provider; we
    write the mark, then check for the identity. Whatever the interleaving, either the shim sees
    the mark and starts nothing, or we see its identity and treat the run as started."""
    files.control.mkdir(mode=0o700, parents=True, exist_ok=True)
    (files.control / ABANDONED_FILE).write_text("abandoned\n")
    return _identity(files) is None


def read_new_output(files: AgentFiles, offset: int, final: bool, limit: int = -1) -> tuple[bytes, int]:
    """Output written since `offset`, at most `limit` bytes: whole lines while the agent runs (all
    of it once it has finished), and a line longer than `limit` cut where no UTF-8 character is
    split in two."""
    try:
        with files.output.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit if limit > 0 else -1)
            more = limit > 0 and bool(handle.read(1))
    except FileNotFoundError:
        return b"", offset
    if final and not more:
        return data, offset + len(data)
    end = data.rfind(b"\n") + 1
    if end:
        data = data[:end]
    elif limit > 0 and len(data) == limit:
        data = data[: _character_boundary(data)]
    else:
        data = b""  # the agent is still writing this line
    return data, offset + len(data)


def _character_boundary(data: bytes) -> int:
    """The longest prefix of `data` that does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: its character starts further back
        needed = 1 if byte < 0xC0 else 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2
        return len(data) if back >= needed else (len(data) - back) or len(data)
    return len(data)


def output_tail(files: AgentFiles, lines: int = 15, window: int = 16384) -> str:
    """The last lines of the agent's output, for a person reading why it failed."""
    try:
        with files.output.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - window, 0))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
