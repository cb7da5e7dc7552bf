"""How long a `cw` command makes a person wait, against the least a program making the same calls
can take, as ratios pair by pair in one run.

    python -m bench.cli_startup [--pairs 9] [--cw VENV ...]

A store runs as its own process on a fresh $CW_HOME, seeded with one initiative of TASKS tasks
(none of the three verbs needs the orchestrator: they read the store only). Each round runs, one
after another, in an order that alternates from round to round:

- the `cw` command, as a person runs it (the console script of a virtualenv: this checkout's, or
  each `--cw VENV`, e.g. `--cw /work/main/.venv` for main's code in the same run);
- its floor: a script that imports grpc and the generated modules of the calls it makes, reads the
  client token and makes the same calls (no SDK, no click, no rich);
- `python -c pass` (a bare interpreter) and `python -c 'import grpc'`.

What is timed, from the spawn of the process:
- `cw task list --json`: to its exit (one ListTasks);
- `cw inbox`: to its exit (the nine reads the inbox is made of);
- `cw watch INITIATIVE`: to its first line of output. Its stdout is a pipe, so that line is
  "watching NAME (ID); Ctrl-C stops", printed once the board is read (the log's head, the
  initiative, its phases, tasks and agents: five calls) and just before the event stream is opened
  (one more call, nothing more to import). The floor makes those five reads and prints a line.

The target is each command at most 1.5x its floor.

Every process compiles its modules once, into a bytecode cache of this run's own
(PYTHONPYCACHEPREFIX; the warm-up round fills it), as a person's Python does after a command's
first run; `--no-bytecode-cache` keeps the environment's setting instead (PYTHONDONTWRITEBYTECODE:
every run compiles the modules that have no cached bytecode, ours and the generated ones).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cw.store.v1 import initiative_pb2, phase_pb2, project_pb2, task_pb2
from cw_edge.tokens import AUTH_ENVIRONMENT, Identity
from tests.e2e.cluster import make_git_repo
from tests.support import authorized_channel, start_store_process, stubs, tokens_in

ROOT = Path(__file__).resolve().parents[1]
TASKS = 20
TARGET = 1.5

# The least each command's calls take: grpc, the generated modules they need, the token.
_PREAMBLE = """\
import os, sys
import grpc
{imports}
token = open(os.path.join(os.environ["CW_HOME"], "auth", "client.token")).read().strip()
auth = (("authorization", "Bearer " + token),)
channel = grpc.insecure_channel(os.environ["CW_STORE"])
"""
FLOOR_LIST = """\
from cw.store.v1 import task_pb2, task_pb2_grpc
---
tasks = task_pb2_grpc.TaskServiceStub(channel).ListTasks(task_pb2.ListTasksRequest(page_size=1000), metadata=auth)
print(len(tasks.tasks))
"""
FLOOR_INBOX = """\
from cw.store.v1 import account_pb2, account_pb2_grpc, agent_pb2, agent_pb2_grpc, initiative_pb2
from cw.store.v1 import initiative_pb2_grpc, message_pb2, message_pb2_grpc, phase_pb2, phase_pb2_grpc
from cw.store.v1 import project_pb2, project_pb2_grpc, proposal_pb2, proposal_pb2_grpc, task_pb2, task_pb2_grpc
---
page = 1000
tasks = task_pb2_grpc.TaskServiceStub(channel)
found = [
    message_pb2_grpc.MessageServiceStub(channel).ListMessages(
        message_pb2.ListMessagesRequest(pending_for_user=True, page_size=page), metadata=auth),
    agent_pb2_grpc.AgentServiceStub(channel).ListAgents(
        agent_pb2.ListAgentsRequest(status=agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT, page_size=page), metadata=auth),
    phase_pb2_grpc.PhaseServiceStub(channel).ListPhases(
        phase_pb2.ListPhasesRequest(status=phase_pb2.PHASE_STATUS_PENDING_REVIEW, page_size=page), metadata=auth),
    tasks.ListTasks(task_pb2.ListTasksRequest(status=task_pb2.TASK_STATUS_BLOCKED, page_size=page), metadata=auth),
    proposal_pb2_grpc.ProposalServiceStub(channel).ListProposals(
        proposal_pb2.ListProposalsRequest(status=proposal_pb2.PROPOSAL_STATUS_PENDING, page_size=page), metadata=auth),
    project_pb2_grpc.ProjectServiceStub(channel).ListProjects(
        project_pb2.ListProjectsRequest(page_size=page), metadata=auth),
    account_pb2_grpc.AccountServiceStub(channel).ListAccounts(
        account_pb2.ListAccountsRequest(page_size=page), metadata=auth),
    tasks.ListTasks(task_pb2.ListTasksRequest(status=task_pb2.TASK_STATUS_PENDING, page_size=page), metadata=auth),
    initiative_pb2_grpc.InitiativeServiceStub(channel).ListInitiatives(
        initiative_pb2.ListInitiativesRequest(status=initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW, page_size=page),
        metadata=auth),
]
print(len(found))
"""
FLOOR_WATCH = """\
from cw.store.v1 import agent_pb2, agent_pb2_grpc, event_pb2, event_pb2_grpc, initiative_pb2, initiative_pb2_grpc
from cw.store.v1 import phase_pb2, phase_pb2_grpc, task_pb2, task_pb2_grpc
---
wanted, page = sys.argv[1], 1000
event_pb2_grpc.EventServiceStub(channel).ListEvents(event_pb2.ListEventsRequest(page_size=1), metadata=auth)
initiative = initiative_pb2_grpc.InitiativeServiceStub(channel).GetInitiative(
    initiative_pb2.GetInitiativeRequest(id=wanted), metadata=auth)
phase_pb2_grpc.PhaseServiceStub(channel).ListPhases(
    phase_pb2.ListPhasesRequest(initiative_id=wanted, page_size=page), metadata=auth)
task_pb2_grpc.TaskServiceStub(channel).ListTasks(
    task_pb2.ListTasksRequest(initiative_id=wanted, page_size=page), metadata=auth)
agent_pb2_grpc.AgentServiceStub(channel).ListAgents(
    agent_pb2.ListAgentsRequest(initiative_id=wanted, page_size=page), metadata=auth)
print("watching", initiative.name, flush=True)
"""


def floor_script(text: str) -> str:
    imports, body = text.split("---\n")
    return _PREAMBLE.format(imports=imports) + body


@dataclass(frozen=True)
class Run:
    """One command to time: to its exit, or (`first_line`) to its first line of output."""

    argv: list[str]
    first_line: bool = False

    def seconds(self, env: dict[str, str]) -> float:
        began = time.perf_counter()
        with subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
            assert process.stdout is not None
            if self.first_line:
                ok = bool(process.stdout.readline())
                elapsed = time.perf_counter() - began
                process.kill()
            else:
                _out, _err = process.communicate(timeout=60)
                elapsed = time.perf_counter() - began
                ok = process.returncode == 0
            process.wait(10)
        if not ok:
            raise RuntimeError(f"{' '.join(self.argv)} failed")
        return elapsed


@dataclass
class Verb:
    """A cw command, its floor, and what each round measured (seconds)."""

    name: str
    arguments: list[str]
    floor: str
    floor_arguments: list[str] = field(default_factory=list)
    first_line: bool = False
    samples: dict[str, list[float]] = field(default_factory=dict)


def seed(address: str, token: str, root: Path) -> str:
    """One project, one initiative, one phase of TASKS tasks; returns the initiative's id."""
    channel = authorized_channel(address, token)
    api = stubs(channel)
    repo = make_git_repo(root / "repo")
    project = api.projects.CreateProject(
        project_pb2.CreateProjectRequest(project=project_pb2.Project(name="app", url=str(repo)))
    )
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="bench"))
    )
    api.projects.SetInitiativeProjects(
        project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative.id, project_ids=[project.id])
    )
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name="one"))
    )
    for index in range(TASKS):
        task = task_pb2.Task(initiative_id=initiative.id, phase_id=phase.id, name=f"task {index}")
        api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task))
    channel.close()
    return str(initiative.id)


def measure_round(runs: dict[str, Run], env: dict[str, str], reverse: bool) -> dict[str, float]:
    order = list(runs)[::-1] if reverse else list(runs)
    return {name: runs[name].seconds(env) for name in order}


def ratio_line(label: str, samples: dict[str, list[float]], against: str) -> str:
    pairs = [mine / theirs for mine, theirs in zip(samples[label], samples[against], strict=True)]
    return f"{statistics.median(pairs):5.2f}x"


def report(verb: Verb, variants: list[str]) -> None:
    s = verb.samples
    floor_ms = statistics.median(s["floor"]) * 1000
    print(f"\ncw {verb.name}: floor {floor_ms:.0f} ms (median); per pair, median of the ratios:")
    for variant in variants:
        ms = statistics.median(s[variant]) * 1000
        to_floor = statistics.median(a / b for a, b in zip(s[variant], s["floor"], strict=True))
        verdict = "meets" if to_floor <= TARGET else "misses"
        print(
            f"  {variant:<28} {ms:6.0f} ms  vs floor {ratio_line(variant, s, 'floor')} ({verdict} {TARGET}x)"
            f"  vs python -c pass {ratio_line(variant, s, 'bare')}  vs import grpc {ratio_line(variant, s, 'grpc')}"
        )
    print(
        f"  {'floor':<28} {floor_ms:6.0f} ms  vs python -c pass {ratio_line('floor', s, 'bare')}"
        f"  vs import grpc {ratio_line('floor', s, 'grpc')}"
    )


def cw_commands(venvs: list[Path]) -> dict[str, list[str]]:
    """Each virtualenv's `cw` console script, named by its checkout."""
    return {f"cw ({venv.resolve().parent.name})": [str(venv / "bin" / "cw")] for venv in venvs}


def check_outputs(env: dict[str, str], command: list[str]) -> None:
    """The commands measured do what they say: the JSON list holds every task."""
    listed = subprocess.run([*command, "task", "list", "--json"], env=env, capture_output=True, check=True)
    count = len(json.loads(listed.stdout))
    if count != TASKS:
        raise RuntimeError(f"{command[0]} listed {count} tasks, not {TASKS}")


def bytecode_environment(root: Path, cached: bool) -> dict[str, str]:
    """The environment's variables, with this run's own bytecode cache unless `cached` is False."""
    if not cached:
        return dict(os.environ)
    inherited = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**inherited, "PYTHONPYCACHEPREFIX": str(root / "pycache")}


def measure(pairs: int, venvs: list[Path], cached: bool) -> None:
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="cw-bench-cli-") as scratch:
        root = Path(scratch)
        store = start_store_process(root / "store.db", root / "store.log", auth_dir=root / "auth")
        try:
            initiative_id = seed(store.address, tokens_in(root / "auth")[Identity.CLIENT], root)
            environment = bytecode_environment(root, cached)
            inherited = {k: v for k, v in environment.items() if k not in AUTH_ENVIRONMENT}
            env = {**inherited, "CW_HOME": str(root), "CW_STORE": store.address, "CW_ORCHESTRATOR": "127.0.0.1:9"}
            commands = cw_commands(venvs)
            for command in commands.values():
                check_outputs(env, command)
            verbs = [
                Verb("task list --json", ["task", "list", "--json"], FLOOR_LIST),
                Verb("inbox", ["inbox"], FLOOR_INBOX),
                Verb("watch (to its first line)", ["watch", initiative_id], FLOOR_WATCH, [initiative_id], True),
            ]
            for verb in verbs:
                script = root / f"floor-{verb.name.split()[0]}.py"
                script.write_text(floor_script(verb.floor))
                runs = {name: Run([*argv, *verb.arguments], verb.first_line) for name, argv in commands.items()}
                runs["floor"] = Run([python, str(script), *verb.floor_arguments], verb.first_line)
                runs["bare"] = Run([python, "-c", "pass"])
                runs["grpc"] = Run([python, "-c", "import grpc"])
                measure_round(runs, env, False)  # warm-up
                for index in range(pairs):
                    for name, seconds in measure_round(runs, env, index % 2 == 1).items():
                        verb.samples.setdefault(name, []).append(seconds)
                report(verb, list(commands))
        finally:
            store.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument(
        "--cw", type=Path, action="append", default=[], help="a virtualenv whose cw to measure (repeatable)"
    )
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile as the environment says")
    arguments = parser.parse_args()
    measure(arguments.pairs, arguments.cw or [ROOT / ".venv"], not arguments.no_bytecode_cache)


if __name__ == "__main__":
    main()
