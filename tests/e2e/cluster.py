"""Both services as separate processes, a throw-away git project, and ways to wait on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import grpc

from clients.local import Service, start
from cw.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from cw.store.v1 import (
    agent_pb2,
    event_pb2,
    initiative_pb2,
    message_pb2,
    phase_pb2,
    project_pb2,
    task_pb2,
)
from cw_edge.tokens import AUTH_ENVIRONMENT, CLIENT_TOKEN, Identity
from tests.processes import end_processes_within
from tests.support import authorized_channel, start_store_process, stubs, tokens_in

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "tests" / "fixtures" / "agents"
SCRIPTED = f"{sys.executable} {AGENTS / 'scripted.py'}"
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Polls `check` until it returns something truthy, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def make_git_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A user's own project: one commit on main."""
    path.mkdir(parents=True)
    run = ["git", "-c", "user.name=user", "-c", "user.email=user@test"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, content in (files or {"README.md": "# project\n", "shared.txt": "line one\n"}).items():
        (path / name).write_text(content)
    subprocess.run([*run, "add", "-A"], cwd=path, check=True)
    subprocess.run([*run, "commit", "-q", "-m", "initial"], cwd=path, check=True)
    return path


def sandbox_paths(root: Path | None, state_dir: Path) -> list[str]:
    """What the scripted agents need of this machine inside cw's sandbox: this checkout (their
    script and its virtualenv) and the Python it was made from, read-only; the test's directory
    read-only (the files tests hold agents with; cw hides its workspace and tokens under it), and
    the test's state directory (attempt counters, plans), writable."""
    paths = [str(ROOT), sys.base_prefix, *([str(root)] if root else []), f"{state_dir}:rw"]
    return [argument for path in paths if not path.startswith("/usr/") for argument in ("--agent-path", path)]


def script(**plan: Any) -> str:
    """A task description the scripted agent follows."""
    return f"Scripted test task.\nscript: {json.dumps(plan)}\n"


@dataclass
class Cluster:
    root: Path
    providers: list[str]
    max_agents: int = 4
    store_log_level: str = "INFO"
    # No pause between attempts unless a test asks for one (README: 5,30,120 by default).
    retry_delays: str = "0"
    # Extra orchestrator flags, e.g. --agents-in-sandbox for the tests that run the claude stand-in.
    orchestrator_flags: list[str] = field(default_factory=list)
    # Where the store's database is (default: `root/store.db`); its token files stay in `root/auth`.
    db_path: Path | None = None
    # The test's directory readable in the agents' sandbox (`sandbox_paths`); False for the tests
    # about what an agent cannot see.
    sandbox_root: bool = True
    store: Service | None = None
    orchestrator: Service | None = None
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.root / "agent-state"

    @property
    def auth_dir(self) -> Path:
        """Where the store creates the token files: `$CW_HOME/auth` with `root` as CW_HOME."""
        return self.root / "auth"

    @property
    def client_token_file(self) -> Path:
        return self.auth_dir / CLIENT_TOKEN

    def client_env(self) -> dict[str, str]:
        """The environment of a `cw` command run by a person of this cluster."""
        assert self.store is not None and self.orchestrator is not None
        inherited = {name: value for name, value in os.environ.items() if name not in AUTH_ENVIRONMENT}
        addresses = {"CW_STORE": self.store.address, "CW_ORCHESTRATOR": self.orchestrator.address}
        return {**inherited, "CW_HOME": str(self.root), **addresses}

    def start_store(self) -> None:
        listen = self.store.address if self.store else "127.0.0.1:0"
        db = self.db_path or self.root / "store.db"
        self.store = start_store_process(
            db, self.root / "store.log", listen, self.store_log_level, auth_dir=self.auth_dir
        )
        self.api = stubs(self._channel(self.store.address))

    def start_orchestrator(self, faults: str = "", extra: tuple[str, ...] = ()) -> None:
        """`faults`: moments at which the orchestrator SIGKILLs itself (orchestrator_service/faults.py)."""
        assert self.store is not None
        listen = self.orchestrator.address if self.orchestrator else "127.0.0.1:0"
        arguments = ["--store", self.store.address, "--listen", listen, "--workspace", str(self.root / "workspace")]
        arguments += ["--auth-dir", str(self.auth_dir)]
        for provider in self.providers:
            arguments += ["--provider", provider]
        arguments += ["--default-provider", self.providers[0].split("=")[0], "--max-agents", str(self.max_agents)]
        arguments += ["--retry-delays", self.retry_delays, *self.orchestrator_flags, *extra]
        if "--agents-in-sandbox" not in arguments:
            arguments += sandbox_paths(self.root if self.sandbox_root else None, self.state_dir)
        self.state_dir.mkdir(exist_ok=True)
        env = {**os.environ, "CW_TEST_STATE_DIR": str(self.state_dir), "CW_FAULTS": faults}
        self.orchestrator = start("orchestrator_service", arguments, self.root / "orchestrator.log", env=env)
        self.orch = orchestrator_pb2_grpc.OrchestratorServiceStub(self._channel(self.orchestrator.address))

    def _channel(self, address: str, identity: Identity = Identity.CLIENT) -> grpc.Channel:
        """Tests act as people do: with the client token, unless they ask for the orchestrator's."""
        channel = authorized_channel(address, tokens_in(self.auth_dir)[identity])
        self.channels.append(channel)
        return channel

    def close(self) -> None:
        for process in (self.orchestrator, self.store):
            if process and process.process.poll() is None:
                process.kill()
        for channel in self.channels:
            channel.close()
        kill_leftover_agents(self.root / "workspace")
        # A shim started just before the orchestrator was killed writes its pid file too late for
        # the line above: the process table finds it (and any CLI a test left running).
        end_processes_within(self.root)

    # ---- building work --------------------------------------------------------------------

    def project(self, name: str = "app") -> project_pb2.Project:
        repo = make_git_repo(self.root / "user" / name)
        return self.api.projects.CreateProject(
            project_pb2.CreateProjectRequest(project=project_pb2.Project(name=name, url=str(repo)))
        )

    def initiative(self, name: str, *projects: project_pb2.Project) -> initiative_pb2.Initiative:
        initiative = self.api.initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name=name))
        )
        self.api.projects.SetInitiativeProjects(
            project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative.id, project_ids=[p.id for p in projects])
        )
        return initiative

    def phase(self, initiative: initiative_pb2.Initiative, name: str, after: list[str] = ()) -> phase_pb2.Phase:  # type: ignore[assignment]
        phase = self.api.phases.CreatePhase(
            phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative.id, name=name))
        )
        for dependency in after:
            self.api.phases.CreatePhaseDependency(
                phase_pb2.CreatePhaseDependencyRequest(phase_id=phase.id, depends_on_phase_id=dependency)
            )
        return phase

    def task(self, phase: phase_pb2.Phase, name: str, after: list[str] = (), **plan: Any) -> task_pb2.Task:  # type: ignore[assignment]
        task = self.api.tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                task=task_pb2.Task(
                    initiative_id=phase.initiative_id, phase_id=phase.id, name=name, description=script(**plan)
                )
            )
        )
        for dependency in after:
            self.api.tasks.CreateTaskDependency(
                task_pb2.CreateTaskDependencyRequest(task_id=task.id, depends_on_task_id=dependency)
            )
        return task

    # ---- reading state --------------------------------------------------------------------

    def get_task(self, task_id: str) -> task_pb2.Task:
        return self.api.tasks.GetTask(task_pb2.GetTaskRequest(id=task_id), timeout=10)

    def get_phase(self, phase_id: str) -> phase_pb2.Phase:
        return self.api.phases.GetPhase(phase_pb2.GetPhaseRequest(id=phase_id), timeout=10)

    def agents_of(self, task_id: str) -> list[agent_pb2.Agent]:
        return list(self.api.agents.ListAgents(agent_pb2.ListAgentsRequest(task_id=task_id), timeout=10).agents)

    def messages_from(self, agent_id: str) -> list[message_pb2.Message]:
        """What the agent told the person (its signal file's `messages`), as stored."""
        request = message_pb2.ListMessagesRequest(sender_id=agent_id)
        return list(self.api.messages.ListMessages(request, timeout=10).messages)

    def committed_answers(self, phase_id: str) -> dict[str, str]:
        """What the scripted askers committed on resume: answers.txt, `{"QUESTION_ID": "answer"}`."""
        for project in self.diff(phase_id).projects:
            for line in project.unified_diff.splitlines():
                if line.startswith("+{"):
                    return dict(json.loads(line[1:]))
        return {}

    def events(self, after: int = 0) -> list[event_pb2.Event]:
        found: list[event_pb2.Event] = []
        while True:
            page = self.api.events.ListEvents(event_pb2.ListEventsRequest(after_sequence=after, page_size=1000))
            found += page.events
            if not page.events:
                return found
            after = page.last_sequence

    def wait_task(self, task_id: str, status: task_pb2.TaskStatus.ValueType, timeout: float = 60.0) -> Any:
        def reached() -> task_pb2.Task | None:
            task = self.get_task(task_id)
            return task if task.status == status else None

        return wait_for(f"task {task_id} to be {task_pb2.TaskStatus.Name(status)}", reached, timeout)

    def wait_phase(self, phase_id: str, status: phase_pb2.PhaseStatus.ValueType, timeout: float = 60.0) -> Any:
        def reached() -> phase_pb2.Phase | None:
            phase = self.get_phase(phase_id)
            return phase if phase.status == status else None

        return wait_for(f"phase {phase_id} to be {phase_pb2.PhaseStatus.Name(status)}", reached, timeout)

    def diff(self, phase_id: str) -> orchestrator_pb2.GetPhaseDiffResponse:
        return self.orch.GetPhaseDiff(orchestrator_pb2.GetPhaseDiffRequest(phase_id=phase_id), timeout=30)

    def approve(self, *phases: phase_pb2.Phase) -> None:
        for phase in phases:
            self.orch.ApprovePhase(orchestrator_pb2.ApprovePhaseRequest(phase_id=phase.id), timeout=10)

    def plan_for_initiative(self, initiative_id: str, **plan: Any) -> None:
        """What the scripted agent does on a task cw wrote (a revision, a merge task) of the initiative."""
        self.state_dir.mkdir(exist_ok=True)
        (self.state_dir / f"plan-initiative-{initiative_id}.json").write_text(json.dumps(plan))

    def cw(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The `cw` CLI, run as a person of this cluster would (the module's `cw`)."""
        return cw(self, *args, check=check)

    def cw_json(self, *args: str) -> Any:
        return cw_json(self, *args)

    def all_spawned(self, tasks: list[task_pb2.Task]) -> bool:
        """Every task has an agent whose process has started (its pid is recorded)."""
        return all(any(agent.pid for agent in self.agents_of(task.id)) for task in tasks)

    def exited_agents(self) -> int:
        """Agents whose shim recorded an exit, whether or not anyone has settled them yet."""
        return len(list((self.root / "workspace" / "agents").glob("*/exit.json")))

    def assert_invariants(self) -> None:
        """No task with two live agents; no task IN_PROGRESS without a live agent."""
        live: dict[str, int] = {}
        for status in (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT):
            for agent in self.api.agents.ListAgents(agent_pb2.ListAgentsRequest(status=status, page_size=1000)).agents:
                live[agent.task_id] = live.get(agent.task_id, 0) + 1
        assert all(count == 1 for count in live.values()), live
        in_progress = self.api.tasks.ListTasks(
            task_pb2.ListTasksRequest(status=task_pb2.TASK_STATUS_IN_PROGRESS, page_size=1000)
        ).tasks
        assert all(task.id in live for task in in_progress), [t.id for t in in_progress]


def cw(c: Cluster, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The `cw` CLI run as a person of the cluster runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", *args],
        capture_output=True,
        text=True,
        env=c.client_env(),
        input=input_text,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cw_json(c: Cluster, *args: str) -> Any:
    return json.loads(cw(c, "--json", *args).stdout)


def kill_leftover_agents(workspace: Path) -> None:
    """Agents outlive the orchestrator by design; a test must not leave them behind."""
    for identity in workspace.glob("agents/*/shim*.json"):
        try:
            pid = int(json.loads(identity.read_text())["pid"])
            os.killpg(pid, 9)
        except (ValueError, KeyError, ProcessLookupError, PermissionError):
            continue


@contextmanager
def cluster(root: Path, providers: list[str] | None = None, max_agents: int = 4) -> Iterator[Cluster]:
    running = Cluster(root, providers or [f"scripted={SCRIPTED}"], max_agents)
    try:
        running.start_store()
        running.start_orchestrator()
        yield running
    finally:
        running.close()


__all__ = ["Cluster", "SimpleNamespace", "cluster", "cw", "cw_json", "make_git_repo", "script", "wait_for"]
