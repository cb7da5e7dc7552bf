"""Sampling a running store with py-spy (pinned in the dev dependencies), and the top of what it saw.

py-spy reads the process from outside, so the store runs exactly as in production: nothing is
imported into it and it pays nothing but the pauses of sampling.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RATE = 250
TOP = 15


@contextmanager
def sampled(pid: int, directory: Path | None, part: str) -> Iterator[None]:
    """Samples `pid` while the block runs (nothing when `directory` is None), then prints the top;
    CW_PROFILE_NATIVE=1 adds native frames.
    Only the thread holding the interpreter lock is sampled: the store's Python runs one thread at
    a time, so that is where its time goes."""
    if directory is None:
        yield
        return
    beside = Path(sys.executable).with_name("py-spy")
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: make install")
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{part}.txt"
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw", "--gil"]
    if os.environ.get("CW_PROFILE_NATIVE"):
        command.append("--native")  # C frames too: gRPC's core, the system calls
    sampler = subprocess.Popen(
        [*command, "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(60)
    print(f"profile of the store during {part} ({output}):")
    print(top(output.read_text()))


def _frames(stack: str) -> list[str]:
    """py-spy's raw format: `frame;frame;... count`, a frame being `function (file:line)`. Lines
    are dropped, so a function's samples add up over its lines."""
    names = []
    for frame in stack.split(";"):
        function, _, where = frame.partition(" (")
        names.append(f"{function} ({where.rsplit(':', 1)[0].rsplit('/', 2)[-1] if where else '?'})")
    return names


def top(raw: str, count: int = TOP) -> str:
    """The functions with the most samples on the CPU: own (the innermost frame) and in total (the
    function anywhere on the stack), each as a share of all samples."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames, weight = _frames(stack), int(number)
        if not frames:
            continue
        samples += weight
        own[frames[-1]] += weight
        for name in set(frames):
            total[name] += weight
    lines = [f"  {samples} samples; own                                   | total"]
    for (own_name, own_count), (total_name, total_count) in zip(
        own.most_common(count), total.most_common(count), strict=False
    ):
        lines.append(
            f"  {100 * own_count / max(samples, 1):5.1f}% {own_name[:60]:<60} | "
            f"{100 * total_count / max(samples, 1):5.1f}% {total_name[:70]}"
        )
    return "\n".join(lines)
