"""What cw's sandbox adds to an agent's start, as a ratio against the same start without it.

    python -m bench.sandbox_start [--runs N]

Each run starts an agent as the orchestrator does (the shim in a session of its own, which runs
the provider) and waits until the shim has recorded the agent's exit: once with the agent run
directly, once inside its bubblewrap sandbox (agents/sandbox.py), alternating, in the same run.
Two agents: `true` (the start alone) and a Python interpreter that imports nothing of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestrator_service.agents import launcher, sandbox, supervisor
from orchestrator_service.agents.sandbox import AgentPath, RunMounts, SandboxPolicy
from orchestrator_service.agents.shim import EXIT_FILE
from orchestrator_service.agents.supervisor import AgentFiles


def _start_and_wait(files: AgentFiles, command: list[str]) -> float:
    """Seconds from spawning the shim to its exit record (the agent started, ran and ended)."""
    (files.control / EXIT_FILE).unlink(missing_ok=True)
    began = time.perf_counter()
    child = supervisor.spawn(files, command, dict(os.environ))
    child.wait(60)
    elapsed = time.perf_counter() - began
    if not (files.control / EXIT_FILE).exists():
        raise RuntimeError(f"the agent {command[-1]!r} recorded no exit")
    return elapsed


def _sandboxed(files: AgentFiles, command: list[str]) -> list[str]:
    files.config_dir.mkdir(mode=0o700, exist_ok=True)
    passwd, group = sandbox.account_files(files.config_dir)
    (files.control / launcher.PASSWD_FILE).write_text(passwd)
    (files.control / launcher.GROUP_FILE).write_text(group)
    mounts = RunMounts(
        writable=(files.workdir, files.config_dir, files.outbox),
        readable=(files.prompt,),
        home=files.config_dir,
        cwd=files.workdir,
        passwd=files.control / launcher.PASSWD_FILE,
        group=files.control / launcher.GROUP_FILE,
    )
    policy = SandboxPolicy(paths=(AgentPath(Path(sys.base_prefix)),))
    return sandbox.bwrap_command(policy, mounts, command, sandbox.system_mounts())


def measure(runs: int) -> None:
    reason = sandbox.cannot_sandbox()
    if reason:
        raise SystemExit(f"no sandbox here: {reason}")
    with tempfile.TemporaryDirectory(prefix="cw-bench-sandbox-") as scratch:
        files = AgentFiles.of(Path(scratch), "bench")
        supervisor.make_private_dirs(files)
        files.prompt.write_text("bench\n")
        agents = {"true": ["true"], "python": [os.path.realpath(sys.executable), "-I", "-S", "-c", "pass"]}
        for name, command in agents.items():
            wrapped = _sandboxed(files, command)
            _start_and_wait(files, command), _start_and_wait(files, wrapped)  # warm-up
            direct, inside = [], []
            for _ in range(runs):
                direct.append(_start_and_wait(files, command))
                inside.append(_start_and_wait(files, wrapped))
            plain, boxed = statistics.median(direct), statistics.median(inside)
            print(
                f"agent {name:<7} start without sandbox {plain * 1000:7.1f} ms  "
                f"in sandbox {boxed * 1000:7.1f} ms  ratio {boxed / plain:5.2f}x  (+{(boxed - plain) * 1000:.1f} ms)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    measure(parser.parse_args().runs)


if __name__ == "__main__":
    main()
