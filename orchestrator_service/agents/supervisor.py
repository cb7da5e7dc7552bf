"""Agent processes on disk: where their files live, how they start, how they are seen to end.

Each agent has a control directory `<workspace>/agents/<agent id>/` (output, prompt, signal file,
the shim's identity and exit files). A run works in its task's worktrees, `<workspace>/tasks/<task
id>/` (controllers/agent_runs/workdirs.py); `work/` in the control directory is the working directory of a
run without a task. The directory derives from the agent's id, never from a path stored anywhere, and is
private to the user (0700). Nothing here needs the orchestrator to have watched the process:
everything can be read back after a restart.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from orchestrator_service.agents import control_files, process
from orchestrator_service.agents.control_files import UnsafeControlFile
from orchestrator_service.agents.shim import ABANDONED_FILE, EXIT_FILE, FENCE_FILE, IDENTITY_FILE, PROMPT_FILE
from orchestrator_service.paths import safe_id

# The largest signal file read (a report with its proposals); shim and exit files are far smaller.
SIGNAL_CAP = 4 * 1024 * 1024
SMALL_FILE_CAP = 64 * 1024
# What one unbounded read of the output hands out at most.
OUTPUT_READ_CAP = 64 * 1024 * 1024
SHIM_MODULE = "orchestrator_service.agents.shim"
# Where the `orchestrator_service` package lies (a checkout, or site-packages).
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
# How a shim starts: isolated and without `site` (`-I -S`: no site-packages, no editable-install
# finders, no PYTHON* variables; it needs the standard library and its own modules alone), which
# saves a good part of its start's CPU (bench/many_agents.py); its argv still names SHIM_MODULE,
# by which its process is known (`_is_our_shim`). sys.argv: ["-c", package parent, SHIM_MODULE,
# the shim's own arguments...].
_SHIM_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from orchestrator_service.agents.shim import main; sys.exit(main(sys.argv[3:]))"
)


def shim_command(control: Path, options: list[str], command: list[str]) -> list[str]:
    """The shim's command line for the agent whose control directory is `control`."""
    boot = [sys.executable, "-I", "-S", "-c", _SHIM_BOOT, _PACKAGE_PARENT, SHIM_MODULE]
    return [*boot, str(control), *options, "--", *command]


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
    # Running, and the process is the shim this run's files name, checked (not just a young run
    # that has not recorded itself yet).
    identified: bool = False


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
    def outbox(self) -> Path:
        """The only part of the control directory a sandboxed agent may write: its signal file."""
        return self.control / "outbox"

    @property
    def signal(self) -> Path:
        return self.outbox / "signal.json"

    @property
    def answers(self) -> Path:
        return self.control / "answers.json"

    @property
    def config_dir(self) -> Path:
        return self.control / "config"

    def read_signal(self) -> str | None:
        """The agent's report; one that is not a plain file of its own (a FIFO, a symlink to
        /dev/zero) or is too large reads as the run's error."""
        try:
            return control_files.read_text(self.signal, SIGNAL_CAP)
        except UnsafeControlFile as error:
            return json.dumps({"status": "error", "error": f"unreadable signal file: {error}"})
        except OSError as error:
            return json.dumps({"status": "error", "error": f"unreadable signal file: {error.strerror}"})

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
    """A small JSON object the shim wrote; anything else (missing, not a plain file, too large,
    not JSON) reads as nothing."""
    try:
        text = control_files.read_bytes(path, SMALL_FILE_CAP)
        data = json.loads(text) if text is not None else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_private_dirs(files: AgentFiles) -> None:
    """The control and work directories, readable by the user alone."""
    for directory in (files.control.parent, files.control, files.workdir, files.outbox):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.is_symlink():
            raise UnsafeControlFile(f"{directory.name}: a symlink, not a directory")
        directory.chmod(0o700)


def open_output(files: AgentFiles) -> int:
    """The output file for appending: a plain file of its own. Anything else standing there (a
    symlink to a file of the orchestrator's, a FIFO) is moved aside, never written through."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    with control_files.directory(files.control) as parent:
        for _ in range(2):
            try:
                descriptor = os.open(files.output.name, flags, 0o600, dir_fd=parent)
                status = os.fstat(descriptor)
                if stat.S_ISREG(status.st_mode) and status.st_nlink == 1:
                    os.set_blocking(descriptor, True)
                    return descriptor
                os.close(descriptor)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENXIO):
                    raise
            aside = f"{files.output.name}.unsafe.{time.time_ns()}"
            os.replace(files.output.name, aside, src_dir_fd=parent, dst_dir_fd=parent)
    raise UnsafeControlFile(f"{files.output.name}: cannot be made a plain file")


def spawn(
    files: AgentFiles,
    command: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    max_processes: int | None = None,
) -> subprocess.Popen[bytes]:
    """Starts the shim in a session of its own, so it outlives the orchestrator (as long as the
    workspace's fence lets it), in `cwd` (its task's worktree) or else its work directory;
    `max_processes`: the run's pids cgroup (pids_cgroup.py)."""
    make_private_dirs(files)
    fence = ["--fence", str(files.fence)]
    if max_processes:
        fence += ["--max-processes", str(max_processes)]
    with os.fdopen(open_output(files), "ab") as output:
        return subprocess.Popen(
            shim_command(files.control, fence, command),
            cwd=cwd or files.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def observe(files: AgentFiles, spawned_at: float, spawned_pid: int = 0) -> Observation:
    """Running, exited (with its recorded status) or vanished, from the files and the pid the
    orchestrator recorded when it spawned the shim (a forged shim.json names no shim of ours)."""
    exited = _read_json(files.control / EXIT_FILE)
    if exited is not None:
        return _exited(exited)
    identity = _identity(files)
    if identity is None:
        if time.time() - spawned_at < START_GRACE_SECONDS:
            return Observation(Liveness.RUNNING)
        return Observation(Liveness.VANISHED)
    if _is_our_shim(files, *identity) or (spawned_pid > 0 and _is_shim_pid(files, spawned_pid)):
        return Observation(Liveness.RUNNING, identified=True)
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


def _is_our_shim(files: AgentFiles, pid: int, started: int) -> bool:
    """Whether `pid` runs, with the recorded start time, as the shim of this very control
    directory: shim.json is a file an agent outside cw's sandbox can forge, naming any process."""
    if not process.is_alive(pid, started):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(SHIM_MODULE) in argv and os.fsencode(str(files.control)) in argv


def live_process_group(files: AgentFiles, spawned_pid: int = 0) -> int | None:
    """The group of a shim that still runs (never a pid that has since been reused, nor a
    process a forged shim.json names); `spawned_pid`, the pid the orchestrator recorded in the
    store, when shim.json names no shim of ours."""
    identity = _identity(files)
    if identity and _is_our_shim(files, *identity):
        return identity[0]
    return spawned_pid if spawned_pid > 0 and _is_shim_pid(files, spawned_pid) else None


def kill_group(files: AgentFiles, spawned_pid: int = 0) -> None:
    """Whatever is left of a vanished agent (a provider whose shim was killed) must not keep
    working on a branch another agent is about to take. Signalled only while the group can still
    be ours: its leader is our shim (`_is_our_shim`), or it is gone and its pid is the one the
    orchestrator itself spawned (`spawned_pid`, from the store: a group id stays reserved while
    any member lives, so then only the agent's own processes carry it)."""
    identity = _identity(files)
    if identity is not None and _is_our_shim(files, *identity):
        process.signal_group(identity[0], signal.SIGKILL)
        return
    leader_gone = process.start_time(spawned_pid) is None and (identity is None or identity[0] == spawned_pid)
    if spawned_pid > 0 and (leader_gone or _is_shim_pid(files, spawned_pid)):
        process.signal_group(spawned_pid, signal.SIGKILL)


def _is_shim_pid(files: AgentFiles, pid: int) -> bool:
    started = process.start_time(pid)
    return started is not None and _is_our_shim(files, pid, started)


def abandon(files: AgentFiles) -> bool:
    """Marks a run whose shim never recorded itself as abandoned; True when it never started.

    The shim writes its identity, then checks for this mark before starting the provider; we
    write the mark, then check for the identity. Whatever the interleaving, either the shim sees
    the mark and starts nothing, or we see its identity and treat the run as started."""
    files.control.mkdir(mode=0o700, parents=True, exist_ok=True)
    control_files.write_private(files.control / ABANDONED_FILE, "abandoned\n")
    return _identity(files) is None


def read_new_output(files: AgentFiles, offset: int, final: bool, limit: int = -1) -> tuple[bytes, int]:
    """Output written since `offset`, at most `limit` bytes: whole lines while the agent runs (all
    of it once it has finished), and a line longer than `limit` cut where no UTF-8 character is
    split in two."""
    try:
        with control_files.open_plain(files.output) as handle:
            handle.seek(offset)
            data = handle.read(limit if limit > 0 else OUTPUT_READ_CAP)
            more = bool(handle.read(1)) if limit > 0 else False
    except OSError:  # missing, or not a plain file of its own: nothing of it is handed out
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
        with control_files.open_plain(files.output) as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - window, 0))
            data = handle.read(window)
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
