"""`cw watch` and `cw events --follow` while both services are SIGKILLed and restarted under them:
they say the services are unreachable, carry on once they are back, and show every later event
exactly once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from clients.sdk.event_types import LIFECYCLE_EVENT_TYPES, shown_by_default
from cw.orchestrator.v1 import orchestrator_pb2
from tests.e2e.cluster import Cluster, cluster, wait_for

EVENT_LINE = re.compile(r"^\s*(\d+) \d\d:\d\d:\d\d (\S+)")


@dataclass
class Lines:
    """Everything a stream printed so far, read on a thread so the test never blocks on it."""

    stream: IO[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str) -> int:
        """The index of the first line holding `text`, once there is one."""
        return wait_for(repr(text), lambda: next((i + 1 for i, line in enumerate(self.lines) if text in line), 0)) - 1


def _cw(c: Cluster, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "clients.cli.main", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=c.client_env())


def test_watch_and_follow_ride_out_a_restart_of_both_services(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        initiative = c.initiative("Outage", c.project("app"))
        phase = c.phase(initiative, "P")
        release = tmp_path / "release"
        c.task(phase, "held", wait_for=str(release), files={"held.txt": "1"})
        head = max((e.sequence for e in c.events()), default=0)
        watch = _cw(c, "watch", initiative.id)
        follow = _cw(c, "--json", "events", "--follow", "--since", str(head), "--initiative", initiative.id)
        assert watch.stdout and watch.stderr and follow.stdout and follow.stderr
        seen, watch_errors = Lines(watch.stdout), Lines(watch.stderr)
        followed, follow_notices = Lines(follow.stdout), Lines(follow.stderr)
        try:
            seen.wait_for("watching Outage")
            c.orch.ApprovePhase(orchestrator_pb2.ApprovePhaseRequest(phase_id=phase.id), timeout=30)
            before = seen.wait_for("agent:spawned")
            assert c.store is not None and c.orchestrator is not None
            c.orchestrator.kill()
            c.store.kill()
            outage = seen.wait_for("is unreachable")
            assert f"the store at {c.store.address} is unreachable" in seen.lines[outage]
            follow_notices.wait_for(f"the orchestrator at {c.orchestrator.address} is unreachable")
            c.start_store()
            c.start_orchestrator()
            release.touch()  # the agent, still running, finishes now: its events come after the outage
            assert seen.wait_for("reconnected to the store") > outage > before
            assert watch.wait(60) == 0, "\n".join(seen.lines + watch_errors.lines)
            follow_notices.wait_for("reconnected to the orchestrator")
            assert "awaits review" in seen.lines[-1]
            after = [line for line in seen.lines[outage:] if EVENT_LINE.match(line)]
            assert any("task:completed" in line for line in after), "\n".join(seen.lines)

            stored = [e for e in c.events(head) if e.initiative_id == initiative.id]
            shown = [int(m.group(1)) for line in seen.lines if (m := EVENT_LINE.match(line))]
            lifecycle = [e.sequence for e in stored if e.type in LIFECYCLE_EVENT_TYPES]
            assert shown == [s for s in lifecycle if s <= shown[-1]]  # in order, no gap, no duplicate

            everything = [e.sequence for e in stored if shown_by_default(e.type)]
            wait_for("the follower to catch up", lambda: len(followed.lines) >= len(everything))
            followed_sequences = [int(json.loads(line)["sequence"]) for line in followed.lines]
            assert followed_sequences[: len(everything)] == everything
        finally:
            for process in (watch, follow):
                if process.poll() is None:
                    process.kill()
                process.wait(10)
