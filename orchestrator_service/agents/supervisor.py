"""Agent processes on disk: where their files live, how they start, how they are seen to end.

Each agent has a control directory `<workspace>/agents/<agent id>/` (output, prompt, signal file,
the shim's identity and exit files) and a work directory `work/` inside it holding one git worktree
per project. Nothing here needs the orchestrator to have watched the process: everything can be
read back after a restart.
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
from orchestrator_service.agents.shim import EXIT_FILE, IDENTITY_FILE, PROMPT_FILE

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


@dataclass(frozen=True)
class AgentFiles:
    control: Path

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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def spawn(files: AgentFiles, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Starts the shim in a session of its own, so it outlives the orchestrator."""
    files.workdir.mkdir(parents=True, exist_ok=True)
    with files.output.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator_service.agents.shim", str(files.control), "--", *command],
            cwd=files.workdir,
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
        return Observation(Liveness.EXITED, exited.get("exit_code"))
    identity = _read_json(files.control / IDENTITY_FILE)
    if identity is None:
        if time.time() - spawned_at < START_GRACE_SECONDS:
            return Observation(Liveness.RUNNING)
        return Observation(Liveness.VANISHED)
    if process.is_alive(int(identity["pid"]), int(identity.get("start_time") or -1)):
        return Observation(Liveness.RUNNING)
    exited = _read_json(files.control / EXIT_FILE)  # it may have finished since the first look
    if exited is not None:
        return Observation(Liveness.EXITED, exited.get("exit_code"))
    return Observation(Liveness.VANISHED)


def _process_group(files: AgentFiles) -> int | None:
    identity = _read_json(files.control / IDENTITY_FILE)
    return int(identity["pid"]) if identity else None


def live_process_group(files: AgentFiles) -> int | None:
    """The group of a shim that still runs (never a pid that has since been reused)."""
    identity = _read_json(files.control / IDENTITY_FILE)
    if identity and process.is_alive(int(identity["pid"]), int(identity.get("start_time") or -1)):
        return int(identity["pid"])
    return None


def kill_group(files: AgentFiles) -> None:
    """Whatever is left of a vanished agent (a provider whose shim was killed) must not keep
    working on a branch another agent is about to take. The group id stays reserved while any
    member lives, so this reaches only the agent's own processes."""
    pgid = _process_group(files)
    if pgid is not None:
        process.signal_group(pgid, signal.SIGKILL)


def read_new_output(files: AgentFiles, offset: int, final: bool) -> tuple[bytes, int]:
    """Complete lines written since `offset` (everything, when the agent has finished)."""
    try:
        with files.output.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return b"", offset
    if not final:
        end = data.rfind(b"\n") + 1
        data = data[:end]
    return data, offset + len(data)
