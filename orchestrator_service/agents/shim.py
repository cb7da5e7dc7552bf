"""`python -m orchestrator_service.agents.shim DIR [--fence FILE] -- COMMAND...`: the parent of one
agent process.

Started in a session of its own, it outlives the orchestrator. It records who it is, runs the
provider, waits, and records the exit status atomically (temporary file, then rename), so that an
orchestrator that was down while the agent ended still sees exactly how it ended.

The provider reads its prompt on standard input, from the agent's prompt file: never from an
argument, where a prompt starting with `-` would read as an option, one over the kernel's 128 KiB
limit for an argument could not start, and any prompt would show in `ps`. Providers that read
`CW_PROMPT_FILE` instead simply leave standard input alone.

The fence (a dead-man's switch, `--fence FILE`): the orchestrator writes `{"deadline": T, "poll": P}`
in its workspace after every renewal of its lease, T on CLOCK_BOOTTIME (system-wide, counting
through a suspend), or `{"deadline": null}` while it is the only orchestrator. The shim reads it
every P seconds while it waits for the agent; past T, the orchestrator has not renewed its lease in
time (it is stopped, or its machine froze, and another may take its runs over): the shim records
the run as fenced and SIGKILLs its process group, itself included. A file that is missing or
unreadable sets no deadline. The shim imports nothing of the cluster: it stays quick to start.

Every agent has a shim for as long as it runs, so the shim imports as little as it can (no `json`,
whose `re` and `enum` were a third of its start, no `subprocess`): it writes its small JSON files
itself (`dumps`), reads the fence as `write_fence` writes it (anything else through `json`), and
starts the agent with `os.posix_spawnp` (every descriptor Python opens is close-on-exec: the
agent inherits its standard input, output and error alone, as `subprocess` would leave it).
"""

from __future__ import annotations

import math
import os
import select
import signal
import sys
import time
from pathlib import Path

from orchestrator_service.agents import control_files, pids_cgroup, process

# typing is not imported at run time: annotations only (mypy reads this name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO

IDENTITY_FILE = "shim.json"
EXIT_FILE = "exit.json"
PROMPT_FILE = "prompt.md"
# Written by an orchestrator that gave this run up before the shim recorded itself.
ABANDONED_FILE = "abandoned"
# In the orchestrator's workspace: its agents' deadline (see above).
FENCE_FILE = "fence.json"
# How often the fence is read when it names no period of its own.
POLL_SECONDS = 0.5
SMALL_FILE_CAP = 64 * 1024
# The sandbox's program (agents/sandbox.py), named here so that the shim imports nothing more.
SANDBOX_PROGRAM = "bwrap"
FENCED_EXIT = {"exit_code": None, "signal": int(signal.SIGKILL), "fenced": True}
# What an agent gets back at its start that Python changed for itself (as `subprocess` restores).
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
# How often a shim without pidfds looks whether its agent has exited.
EXIT_POLL_SECONDS = 0.05


def boottime() -> float:
    """Seconds since boot, suspends included: the fence's clock, shared by every process."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Fence:
    """The fence as read: a plain class (no dataclasses, no typing: each run's shim imports as
    little as it can, see `supervisor.shim_command`)."""

    __slots__ = ("deadline", "poll")

    def __init__(self, deadline: float | None = None, poll: float = POLL_SECONDS) -> None:
        self.deadline = deadline
        self.poll = poll

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fence) and (self.deadline, self.poll) == (other.deadline, other.poll)

    def __hash__(self) -> int:
        return hash((self.deadline, self.poll))

    def __repr__(self) -> str:
        return f"Fence(deadline={self.deadline!r}, poll={self.poll!r})"


def read_fence(path: Path | None) -> Fence:
    if path is None:
        return Fence()
    try:
        text = control_files.read_bytes(path, SMALL_FILE_CAP)
        if text is None:
            return Fence()
        data = _fence_fields(text)
        if data is None:
            import json  # noqa: PLC0415 - a fence written otherwise than by `write_fence` (rare)

            data = json.loads(text)
        deadline, poll = data.get("deadline"), data.get("poll") or POLL_SECONDS
        return Fence(None if deadline is None else float(deadline), min(max(float(poll), 0.02), POLL_SECONDS))
    except (OSError, ValueError, TypeError, AttributeError):
        return Fence()


def _fence_fields(text: bytes) -> dict[str, float | None] | None:
    """The fence as `write_fence` writes it (`{"deadline": 12.5, "poll": 0.3}`, `null` for no
    deadline), read without `json`; None for anything else, which `json` then reads."""
    body = text.strip()
    if not (body.startswith(b"{") and body.endswith(b"}")):
        return None
    fields: dict[str, float | None] = {}
    for item in body[1:-1].split(b", "):
        key, colon, value = item.partition(b": ")
        if not colon or key not in (b'"deadline"', b'"poll"') or not value or value[:1] in b' \t"':
            return None
        fields[key[1:-1].decode()] = None if value == b"null" else float(value)
    return fields


def dumps(data: Mapping[str, object]) -> str:
    """JSON of a flat object of numbers, booleans and nulls, as `json.dumps` writes it; anything
    else through `json`."""
    items = []
    for key, value in data.items():
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif type(value) is int or (type(value) is float and math.isfinite(value)):
            text = repr(value)
        else:
            import json  # noqa: PLC0415 - not a shape the shim writes

            return json.dumps(data)
        if not key.isidentifier():
            import json  # noqa: PLC0415

            return json.dumps(data)
        items.append(f'"{key}": {text}')
    return "{" + ", ".join(items) + "}"


def is_fenced(fence: Fence, now: float) -> bool:
    """Whether the agent must end now: its orchestrator set a deadline and `now` is past it."""
    return fence.deadline is not None and now >= fence.deadline


def write_fence(path: Path, deadline: float | None, poll: float) -> None:
    """Atomic, not synced: the file matters to live processes only (after a reboot no agent runs)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(dumps({"deadline": deadline, "poll": poll}))
    os.replace(temporary, path)


def write_atomically(path: Path, data: Mapping[str, object]) -> None:
    """Synced, through a fresh temporary name: never through a symlink or FIFO an agent planted."""
    control_files.write_private(path, dumps(data), sync=True)


def output_size() -> int | None:
    """Where this run's output begins in the agent's output file (our standard output, opened for
    appending): a resumed agent's runs follow one another in that file."""
    try:
        return os.fstat(sys.stdout.fileno()).st_size
    except (OSError, ValueError):
        return None


def run_start_offset(control: Path) -> int:
    """The offset the shim of the latest run recorded (0 when it recorded none)."""
    import json  # noqa: PLC0415 - the orchestrator's (which has it), never the shim's

    try:
        text = control_files.read_bytes(control / IDENTITY_FILE, SMALL_FILE_CAP)
        identity = json.loads(text) if text is not None else {}
        return max(int(identity.get("output_offset") or 0), 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


class Child:
    """The agent's process, as the shim started it: signalled only until it is reaped (its pid may
    be another process's after that), its return code as `subprocess` gives one (-N: signal N)."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def start(cls, command: list[str], stdin: BinaryIO) -> Child:
        """`command` (looked up in PATH) with `stdin` as its standard input; OSError when it cannot
        start (posix_spawn reports the exec's error)."""
        actions = [(os.POSIX_SPAWN_DUP2, stdin.fileno(), 0)]
        return cls(os.posix_spawnp(command[0], command, os.environ, file_actions=actions, setsigdef=RESTORED_SIGNALS))

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def wait(child: Child, fence: Path | None) -> int | None:
    """The child's return code, or None once fenced. The shim sleeps until the child exits or the
    fence is due for a look (a pidfd: `Popen.wait` with a timeout wakes every 50 ms, which 200
    waiting shims pay for in CPU)."""
    poll = POLL_SECONDS
    descriptor = _pidfd(child.pid)
    try:
        while True:
            returncode = _exited_within(child, descriptor, poll)
            if returncode is not None:
                return returncode
            current = read_fence(fence)
            if is_fenced(current, boottime()):
                return None
            poll = current.poll
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited_within(child: Child, descriptor: int | None, seconds: float) -> int | None:
    """The child's return code once it exits within `seconds`, else None."""
    if descriptor is None:
        until = time.monotonic() + seconds
        while child.poll() is None and time.monotonic() < until:
            time.sleep(EXIT_POLL_SECONDS)
        return child.returncode
    select.select([descriptor], [], [], seconds)  # readable once the child has exited
    return child.poll()


def end_fenced(control: Path, child: Child) -> None:
    """Records the fenced run, then kills the agent's group (the shim's own session, when it leads
    one as the orchestrator starts it) and itself."""
    print("cw: fenced: the orchestrator's lease was not renewed in time; ending the agent", flush=True)
    write_atomically(control / EXIT_FILE, FENCED_EXIT)
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    child.kill()
    os.kill(os.getpid(), signal.SIGKILL)


def may_start(control: Path, fence: Path | None) -> bool:
    """False, with the exit recorded, for a run given up already or already past its deadline
    (its orchestrator stopped while it started the shim)."""
    if (control / ABANDONED_FILE).exists():
        print("cw: this run was given up before it started", flush=True)
        write_atomically(control / EXIT_FILE, {"exit_code": 125, "signal": 0, "abandoned": True})
        return False
    if is_fenced(read_fence(fence), boottime()):
        print("cw: fenced: the orchestrator's lease was not renewed in time; the agent does not start", flush=True)
        write_atomically(control / EXIT_FILE, FENCED_EXIT)
        return False
    return True


def _is_sandbox(command: list[str]) -> bool:
    return os.path.basename(command[0]) == SANDBOX_PROGRAM


def _ignore_term() -> None:
    """bwrap (outside its sandbox) ignores SIGTERM: a stop signals the whole process group, and
    bwrap dying at once would SIGKILL the agent (`--die-with-parent`) before it could end as it
    chooses. The agent gets SIGTERM's default back inside (sandbox.py, `env --default-signal`)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _prompt_input(prompt: Path) -> Any:
    """The prompt file, a plain file of its own (never what a symlink planted there names)."""
    if not prompt.exists() and not prompt.is_symlink():
        return open(os.devnull, "rb")
    return control_files.open_plain(prompt)


def run(control: Path, command: list[str], fence: Path | None = None) -> int:
    """Identity first: if the shim dies before writing it, no agent process was ever started."""
    me = os.getpid()
    identity = {"pid": me, "start_time": process.start_time(me), "output_offset": output_size()}
    # Atomic but not synced (the exit is): it names a live process, which a reboot ends anyway,
    # and its fsync stood between every agent and its start.
    control_files.write_private(control / IDENTITY_FILE, dumps(identity))
    if not may_start(control, fence):
        return 0
    prompt = control / PROMPT_FILE
    try:
        if _is_sandbox(command):
            _ignore_term()  # inherited by bwrap; the shim's own handler follows once it runs
        with _prompt_input(prompt) as stdin:
            child = Child.start(command, stdin)
    except OSError as error:
        print(f"cw: cannot start {command[0]!r}: {error}", flush=True)
        write_atomically(control / EXIT_FILE, {"exit_code": 127, "signal": 0})
        return 0

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    returncode = wait(child, fence)
    if returncode is None:
        end_fenced(control, child)
        return 0
    if _is_sandbox(command):
        returncode = sandboxed_returncode(returncode)
    exit_code = returncode if returncode >= 0 else None
    write_atomically(control / EXIT_FILE, {"exit_code": exit_code, "signal": -returncode if returncode < 0 else 0})
    return 0


def sandboxed_returncode(returncode: int) -> int:
    """bwrap exits 128 + N when its agent died of signal N: recorded as that death, as a run
    outside the sandbox would be (Popen's -N)."""
    if returncode > 128 and returncode - 128 in set(signal.Signals):
        return -(returncode - 128)
    return returncode


USAGE = "usage: python -m orchestrator_service.agents.shim DIR [--fence FILE] [--max-processes N] -- COMMAND..."


def main(argv: list[str]) -> int:
    fence, max_processes = None, 0
    while len(argv) >= 3 and argv[1] in ("--fence", "--max-processes"):
        if argv[1] == "--fence":
            fence = Path(argv[2])
        else:
            max_processes = int(argv[2])
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    control = Path(argv[0])
    group = _limit_processes(control, max_processes) if max_processes > 0 else None
    try:
        return run(control, argv[2:], fence)
    finally:
        if group is not None:
            pids_cgroup.leave(group)


def _limit_processes(control: Path, limit: int) -> Path | None:
    """The run's pids cgroup (pids_cgroup.py), or None, said in the output, where there is none."""
    try:
        return pids_cgroup.join(control.name, limit)
    except OSError as error:
        print(f"cw: no process limit for this run: {error}", flush=True)
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
