"""Many concurrent agents on one orchestrator, each in cw's sandbox.

    python -m bench.many_agents [--agents 200] [--window 10]

One phase of `--agents` tasks at `--max-agents` as many, whose scripted agents sleep once started
(they never finish while measured). Printed, each against its target:
1. seconds from ApprovePhase until every agent process runs (the scripted agent's first write, in
   the test state directory) and until every shim was recorded (`agent:spawned`);
2. the orchestrator's CPU while they all run, over `--window` seconds, as % of one core (from
   /proc), and the store's;
3. what each agent costs beyond its own process: the CPU seconds and memory (RSS and PSS, from
   /proc) of its shim and its two bwrap processes, and the orchestrator's CPU and memory growth per
   agent while starting them;
4. what a lighter shim would save: the shim's RSS and start CPU against a bare Python interpreter
   waiting on a child (`python -I -S`), and against a native program waiting on one (`sleep`), the
   floor of any shim written in C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import event_pb2
from orchestrator_service.agents import launcher, sandbox, supervisor
from orchestrator_service.agents.sandbox import AgentPath, Mode, RunMounts, SandboxPolicy
from orchestrator_service.agents.supervisor import AgentFiles
from tests.e2e.cluster import SCRIPTED, Cluster, sandbox_paths, wait_for

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SHIM_MARK = b"orchestrator_service.agents.shim"
# Long enough to outlast any measurement: the cluster ends them when the bench is done.
SLEEP_SECONDS = 3600


def cpu_seconds(pid: int) -> float:
    """User and system CPU of one process so far (its reaped children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (the interpreter's, the libraries') divided among their
    users, so 200 shims' PSS adds up to what they really take."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """Every thread's children: the orchestrator spawns shims from its worker threads."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def shims_of(orchestrator: int) -> list[int]:
    """The orchestrator's children that are agents' shims."""
    found = []
    for pid in children(orchestrator):
        try:
            if SHIM_MARK in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


@dataclass
class Cost:
    """One process kind's cost per agent: CPU seconds so far, RSS and PSS in KiB (CPU: mean; memory: median)."""

    cpu: float
    rss: int
    pss: int

    def line(self, name: str) -> str:
        memory = f"RSS {self.rss / 1024:5.1f} MiB  PSS {self.pss / 1024:5.1f} MiB"
        return f"  {name:<26} CPU {self.cpu * 1000:6.1f} ms  {memory}"


def cost_of(pids: Iterable[int]) -> Cost:
    cpus, rsss, psss = [], [], []
    for pid in pids:
        try:
            cpus.append(cpu_seconds(pid))
            rsss.append(rss_kib(pid))
            psss.append(pss_kib(pid))
        except OSError:
            continue
    if not cpus:
        return Cost(0.0, 0, 0)
    # CPU in clock ticks (10 ms): the mean, not the median, says what a tick's share is.
    return Cost(statistics.mean(cpus), int(statistics.median(rsss)), int(statistics.median(psss)))


def sandbox_processes(shims: list[int]) -> tuple[list[int], list[int]]:
    """Each shim's bwrap (outside the namespaces) and bwrap's own child (pid 1 inside them)."""
    outer = [child for shim in shims for child in children(shim)]
    inner = [child for pid in outer for child in children(pid)]
    return outer, inner


def floor_costs(scratch: Path) -> tuple[Cost, Cost]:
    """What a shim could cost at least: a bare Python interpreter waiting on a child, and a native
    program (`sleep`) the same way, each started as the shim is and measured once settled."""
    waiting = "import os; os.waitpid(os.spawnvp(os.P_NOWAIT, 'sleep', ['sleep', '30']), 0)"
    python = [sys.executable, "-I", "-S", "-c", waiting]
    native = ["sh", "-c", "sleep 30; :"]
    measured = []
    for command in (python, native):
        started = [subprocess.Popen(command, cwd=scratch, start_new_session=True) for _ in range(5)]
        time.sleep(1.0)  # not a synchronisation: a settled process's memory is what is measured
        measured.append(cost_of(process.pid for process in started))
        for process in started:
            os.killpg(process.pid, 9)
            process.wait()
    return measured[0], measured[1]


def sandboxed_agent(root: Path, state: Path, index: int) -> tuple[list[str], dict[str, str]]:
    """The scripted agent for task `f<index>` in a bwrap sandbox as cw builds one (its own
    directories writable, the checkout and Python readable, the state directory writable)."""
    files = AgentFiles.of(root, f"floor{index}")
    supervisor.make_private_dirs(files)
    files.config_dir.mkdir(mode=0o700, exist_ok=True)
    files.prompt.write_text(f'script: {{"sleep_seconds": {SLEEP_SECONDS}}}\n')
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
    readable = [AgentPath(Path(path)) for path in sandbox_paths(None, state)[1::2] if not path.endswith(":rw")]
    policy = SandboxPolicy(paths=(*readable, AgentPath(state, Mode.READ_WRITE)))
    command = sandbox.bwrap_command(policy, mounts, SCRIPTED.split(), sandbox.system_mounts())
    env = {
        **os.environ,
        "CW_PROMPT_FILE": str(files.prompt),
        "CW_SIGNAL_FILE": str(files.signal),
        "CW_SESSION_ID": "s",
        "CW_AGENT_NAME": f"floor-{index}",
        "CW_TASK_ID": f"floor{index}",
        "CW_INITIATIVE_ID": "i",
        "CW_AGENT_ID": f"floor{index}",
        "CW_TEST_STATE_DIR": str(state),
        "CW_WORKTREES": "{}",
    }
    return command, env


def floor_start(root: Path, agents: int) -> float:
    """Seconds to start `agents` sandboxed scripted agents at once, without cw (no shim, no git, no
    store): until each has made its first write. What the machine needs to run them at all."""
    state = root / "floor-state"
    state.mkdir(parents=True)
    commands = [sandboxed_agent(root / "floor", state, index) for index in range(agents)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        for command, env in commands
    ]
    try:
        wait_for("the floor's agents", lambda: len(list(state.glob("prompts-*.txt"))) >= agents, 600, 0.05)
        return time.perf_counter() - started
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def spawned_count(c: Cluster, after: int) -> int:
    """`agent:spawned` events since `after`, every page of the log read."""
    return sum(event.type == "agent:spawned" for event in c.events(after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--window", type=float, default=10.0, help="seconds the running agents are measured")
    parser.add_argument("--keep", type=Path, default=None, help="work in this new directory and keep it (its logs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-bench-many-") as directory:
        root = Path(directory) if args.keep is None else args.keep
        c = Cluster(root / "cluster", [f"scripted={SCRIPTED}"], args.agents)
        (root / "cluster").mkdir(parents=True)
        try:
            measure(c, args.agents, args.window, root)
        finally:
            c.close()
        floor = floor_start(root, args.agents)
        print(
            f"floor: {args.agents} sandboxed scripted agents started at once without cw, until each "
            f"wrote: {floor:.1f}s (15s target = {15 / floor:.2f}x this floor)"
        )


def measure(c: Cluster, agents: int, window: float, root: Path) -> None:
    c.start_store()
    c.start_orchestrator()
    assert c.orchestrator is not None and c.store is not None
    phase = c.phase(c.initiative("Many", c.project()), "P")
    for index in range(agents):
        c.task(phase, f"t{index}", sleep_seconds=SLEEP_SECONDS)
    orchestrator, store = c.orchestrator.process.pid, c.store.process.pid
    head = c.api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1)).head_sequence
    cpu_before, rss_before = cpu_seconds(orchestrator), rss_kib(orchestrator)
    started = time.perf_counter()
    c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=30)
    state = c.state_dir

    def running() -> bool:
        return len(list(state.glob("prompts-*.txt"))) >= agents

    wait_for(f"{agents} agents running", running, 600, 0.05)
    all_running = time.perf_counter() - started
    wait_for(f"{agents} agent:spawned events", lambda: spawned_count(c, head) >= agents, 120, 0.1)
    all_recorded = time.perf_counter() - started
    start_cpu, start_rss = cpu_seconds(orchestrator) - cpu_before, rss_kib(orchestrator) - rss_before
    time.sleep(1.0)  # not a synchronisation: the last settlement writes out of the window
    o0, s0, t0 = cpu_seconds(orchestrator), cpu_seconds(store), time.perf_counter()
    time.sleep(window)  # the measuring window itself
    elapsed = time.perf_counter() - t0
    o_share = (cpu_seconds(orchestrator) - o0) / elapsed
    s_share = (cpu_seconds(store) - s0) / elapsed
    shims = shims_of(orchestrator)
    outer, inner = sandbox_processes(shims)
    shim, bwrap, bwrap_init = cost_of(shims), cost_of(outer), cost_of(inner)
    python_floor, native_floor = floor_costs(root)
    print(f"{agents} agents (scripted, sleeping), each in cw's sandbox, one orchestrator, {os.cpu_count()} cores:")
    print(
        f"  all agent processes running {all_running:.1f}s after ApprovePhase (target at most 15s: "
        f"{all_running / 15:.2f}x the target); all agent:spawned recorded after {all_recorded:.1f}s"
    )
    print(
        f"  orchestrator while they run: {o_share * 100:.1f}% of a core over {elapsed:.0f}s "
        f"(target under 15%: {o_share / 0.15:.2f}x the target); store {s_share * 100:.1f}%"
    )
    print(f"each agent beyond its own process ({len(shims)} shims found; CPU mean, memory median):")
    print(shim.line("shim (python)"))
    print(bwrap.line("bwrap (outside)"))
    print(bwrap_init.line("bwrap (pid 1 inside)"))
    total = Cost(
        shim.cpu + bwrap.cpu + bwrap_init.cpu,
        shim.rss + bwrap.rss + bwrap_init.rss,
        shim.pss + bwrap.pss + bwrap_init.pss,
    )
    print(total.line("shim + sandbox"))
    print(
        f"  orchestrator, starting them:  CPU {start_cpu / agents * 1000:6.1f} ms  "
        f"RSS growth {start_rss / agents:5.0f} KiB per agent; while they run "
        f"{o_share / agents * 1000:.2f} ms of CPU per agent per second"
    )
    print("what a lighter shim would save, per agent (the shim's CPU is its start, then its waiting):")
    print(python_floor.line("bare python -I -S waiting"))
    print(native_floor.line("native (sh) waiting"))
    print(
        f"  a shim as light as bare Python saves {(shim.pss - python_floor.pss) / 1024:.1f} MiB PSS; "
        f"a native one {(shim.pss - native_floor.pss) / 1024:.1f} MiB PSS "
        f"({(shim.pss - native_floor.pss) * agents / 1024**2:.2f} GiB for {agents} agents) and "
        f"{(shim.cpu - native_floor.cpu) * 1000:.0f} ms of CPU"
    )


if __name__ == "__main__":
    main()
