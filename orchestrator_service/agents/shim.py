"""`python -m orchestrator_service.agents.shim DIR -- COMMAND...`: the parent of one agent process.

Started in a session of its own, it outlives the orchestrator. It records who it is, runs the
provider, waits, and records the exit status atomically (temporary file, then rename), so that an
orchestrator that was down while the agent ended still sees exactly how it ended.

The provider reads its prompt on standard input, from the agent's prompt file: never from an
argument, where a prompt starting with `-` would read as an option, one over the kernel's 128 KiB
limit for an argument could not start, and any prompt would show in `ps`. Providers that read
`CW_PROMPT_FILE` instead simply leave standard input alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator_service.agents import process

IDENTITY_FILE = "shim.json"
EXIT_FILE = "exit.json"
PROMPT_FILE = "prompt.md"
# Written by an orchestrator that gave this run up before the shim recorded itself.
ABANDONED_FILE = "abandoned"


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def output_size() -> int | None:
    """Where this run's output begins in the agent's output file (our standard output, opened for
    appending): a resumed agent's runs follow one another in that file."""
    try:
        return os.fstat(sys.stdout.fileno()).st_size
    except (OSError, ValueError):
        return None


def run_start_offset(control: Path) -> int:
    """The offset the shim of the latest run recorded (0 when it recorded none)."""
    try:
        identity = json.loads((control / IDENTITY_FILE).read_text())
        return max(int(identity.get("output_offset") or 0), 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def run(control: Path, command: list[str]) -> int:
    """Identity first: if the shim dies before writing it, no agent process was ever started."""
    me = os.getpid()
    identity = {"pid": me, "start_time": process.start_time(me), "output_offset": output_size()}
    write_atomically(control / IDENTITY_FILE, identity)
    if (control / ABANDONED_FILE).exists():
        print("cw: this run was given up before it started", flush=True)
        write_atomically(control / EXIT_FILE, {"exit_code": 125, "signal": 0, "abandoned": True})
        return 0
    prompt = control / PROMPT_FILE
    try:
        with prompt.open("rb") if prompt.exists() else open(os.devnull, "rb") as stdin:
            child = subprocess.Popen(command, stdin=stdin)
    except OSError as error:
        print(f"cw: cannot start {command[0]!r}: {error}", flush=True)
        write_atomically(control / EXIT_FILE, {"exit_code": 127, "signal": 0})
        return 0

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    returncode = child.wait()
    exit_code = returncode if returncode >= 0 else None
    write_atomically(control / EXIT_FILE, {"exit_code": exit_code, "signal": -returncode if returncode < 0 else 0})
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m orchestrator_service.agents.shim DIR -- COMMAND...", file=sys.stderr)
        return 2
    return run(Path(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
