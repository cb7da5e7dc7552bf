"""`--agent-max-processes`: a pids cgroup of its own for one run, where the machine lets the shim
make one (cgroup v1's pids hierarchy, written by root). RLIMIT_NPROC cannot do it when cw runs as
root: the kernel does not count it for root's user, which the sandbox's uid maps to.

The shim joins the group before it starts the agent, so that every process of the run, whatever
it forks, counts against `pids.max`; when the agent has ended it moves back to its parent group and
removes the run's (an empty group can be removed). Stdlib only: the shim stays quick to start.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PIDS_V1 = Path("/sys/fs/cgroup/pids")
GROUP_PARENT = "cw-agents"
EMPTY_WAIT_SECONDS = 2.0


def _current_group(root: Path) -> Path:
    """The pids group this process belongs to now (/proc/self/cgroup, the `pids` line)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return root / path.lstrip("/")
    raise OSError("no pids cgroup for this process")


def join(name: str, limit: int, root: Path = PIDS_V1) -> Path:
    """Moves this process into a new group `<its group>/cw-agents/<name>` holding at most `limit`
    processes; OSError where the machine does not allow it."""
    parent = _current_group(root)
    group = parent / GROUP_PARENT / name
    group.mkdir(parents=True, exist_ok=True)
    (group / "pids.max").write_text(f"{limit}\n")
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return group


def remove(name: str, root: Path = PIDS_V1) -> None:
    """A run's group its shim could not remove (it was killed): empty once the run has ended."""
    with contextlib.suppress(OSError, ValueError):
        (_current_group(root) / GROUP_PARENT / name).rmdir()


def leave(group: Path, wait: float = EMPTY_WAIT_SECONDS) -> None:
    """Back into the group this run's was made in; the run's group goes once empty (the last of
    the run's processes may take a moment to be gone once the sandbox's init has ended; what is
    left then goes when the run is settled, `remove`)."""
    with contextlib.suppress(OSError):
        (group.parent.parent / "cgroup.procs").write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + wait
    while True:
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
        time.sleep(0.02)
