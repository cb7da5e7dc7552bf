"""`python -m orchestrator_service.agents.shim DIR -- COMMAND...`: the parent of one agent process.

Started in a session of its own, it outlives the orchestrator. It records who it is, runs the
provider, waits, and records the exit status atomically (temporary file, then rename), so that an
orchestrator that was down while the agent ended still sees exactly how it ended.
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
# Written by an orchestrator that gave this run up before the shim recorded itself.
ABANDONED_FILE = "abandoned"


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def run(control: Path, command: list[str]) -> int:
    """Identity first: if the shim dies before writing it, no agent process was ever started."""
    me = os.getpid()
    write_atomically(control / IDENTITY_FILE, {"pid": me, "start_time": process.start_time(me)})
    if (control / ABANDONED_FILE).exists():
        print("cw: this run was given up before it started", flush=True)
        write_atomically(control / EXIT_FILE, {"exit_code": 125, "signal": 0, "abandoned": True})
        return 0
    try:
        child = subprocess.Popen(command)
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
