"""The agent boundary (README.md, "What an agent can and cannot do"): each attack written as the attack.

The control-file attacks run with `--agents-in-sandbox` (cw adds no sandbox, so the agent can
write its whole control directory): they prove the orchestrator's file handling holds by itself.
In each, the orchestrator keeps serving and another task finishes. The nosy agent runs in cw's
sandbox and fails at every try from inside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import account_pb2, agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents import process
from tests.e2e.cluster import AGENTS, Cluster, wait_for

HOSTILE = f"hostile={sys.executable} {AGENTS / 'hostile.py'}"
COMPLETED = task_pb2.TASK_STATUS_COMPLETED
ENDED = (task_pb2.TASK_STATUS_BLOCKED,)
OUTSIDE_SANDBOX = ["--agents-in-sandbox"]


@contextmanager
def hostile_cluster(
    root: Path, flags: list[str], max_agents: int = 4, provider: str = HOSTILE, claude_account: bool = False
) -> Iterator[Cluster]:
    running = Cluster(root, [provider], max_agents, orchestrator_flags=flags)
    try:
        running.start_store()
        if claude_account:
            account = account_pb2.Account(
                email="dev@example.com", provider="claude", credentials="{}", config_json="{}"
            )
            running.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))
        running.start_orchestrator()
        yield running
    finally:
        running.close()


def attack_task(c: Cluster, phase: phase_pb2.Phase, name: str = "honest", **attack: Any) -> task_pb2.Task:
    """A task whose agent follows `attack` (tests/fixtures/agents/hostile.py); none: an honest one."""
    description = f"Hostile test task.\nattack: {json.dumps(attack or {'then': 'done'})}\n"
    task = task_pb2.Task(initiative_id=phase.initiative_id, phase_id=phase.id, name=name, description=description)
    return c.api.tasks.CreateTask(task_pb2.CreateTaskRequest(task=task))


def ended(c: Cluster, task_id: str) -> task_pb2.Task | None:
    task = c.get_task(task_id)
    return task if task.status in ENDED else None


def approve(c: Cluster, phase: phase_pb2.Phase) -> None:
    c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=30)


def test_fifo_signal_files_neither_fill_the_agent_slots_nor_block_sigterm(tmp_path: Path) -> None:
    with hostile_cluster(tmp_path, OUTSIDE_SANDBOX, max_agents=4) as c:
        phase = c.phase(c.initiative("FIFOs", c.project()), "P")
        fifos = [attack_task(c, phase, f"fifo {n}", do=[{"fifo": "signal"}], then="exit") for n in range(4)]
        approve(c, phase)
        for fifo in fifos:  # every attempt of each (retried at once) read its signal file as an error
            blocked = wait_for(f"{fifo.name} to end", partial(ended, c, fifo.id), 90)
            assert "signal file" in blocked.reason
        later = c.phase(c.initiative("Later", c.project("other")), "Q")
        honest = attack_task(c, later)
        approve(c, later)
        c.wait_task(honest.id, COMPLETED)
        assert c.orchestrator is not None
        c.orchestrator.process.send_signal(signal.SIGTERM)
        assert c.orchestrator.process.wait(30) == 0


def test_a_fifo_as_exit_json_does_not_block_noticing_agents_end(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with hostile_cluster(tmp_path, OUTSIDE_SANDBOX) as c:
        phase = c.phase(c.initiative("FIFO exit", c.project()), "P")
        fifo = attack_task(c, phase, "fifo", do=[{"fifo": "exit"}], wait_for=str(gate), then="done")
        approve(c, phase)
        control = wait_for("the FIFO in place", lambda: _control_with(c, fifo.id, "exit.json", is_fifo=True))
        other = c.phase(c.initiative("Other", c.project("other")), "Q")
        honest = attack_task(c, other)
        approve(c, other)
        c.wait_task(honest.id, COMPLETED)
        assert c.get_task(fifo.id).status == task_pb2.TASK_STATUS_IN_PROGRESS
        gate.touch()  # the shim's own exit record replaces the FIFO
        c.wait_task(fifo.id, COMPLETED)
        assert json.loads((control / "exit.json").read_text())["exit_code"] == 0


def test_a_signal_file_symlinked_to_dev_zero_is_that_runs_error(tmp_path: Path) -> None:
    with hostile_cluster(tmp_path, OUTSIDE_SANDBOX) as c:
        phase = c.phase(c.initiative("Zero", c.project()), "P")
        zero = attack_task(c, phase, "zero", do=[{"symlink": "signal", "to": "/dev/zero"}], then="exit")
        honest = attack_task(c, phase, "honest")
        approve(c, phase)
        blocked = wait_for("the /dev/zero task to end", lambda: ended(c, zero.id), 90)
        assert "signal file" in blocked.reason
        c.wait_task(honest.id, COMPLETED)
        assert c.orchestrator is not None
        assert _peak_memory_kib(c.orchestrator.process.pid) < 1024 * 1024  # far below the 3 GB it once reached


def test_symlinked_prompt_answers_and_config_are_replaced_never_written_through(tmp_path: Path) -> None:
    victims = {name: tmp_path / f"victim-{name}" for name in ("prompt", "answers", "claude_json")}
    for victim in victims.values():
        victim.write_text("precious\n")
    steps = [{"symlink": name, "to": str(victim)} for name, victim in victims.items()]
    claude = f"claude={sys.executable} {AGENTS / 'hostile.py'}"  # a claude run: cw writes its .claude.json
    with hostile_cluster(tmp_path, OUTSIDE_SANDBOX, provider=claude, claude_account=True) as c:
        phase = c.phase(c.initiative("Symlinks", c.project()), "P")
        task = attack_task(c, phase, "links", do=steps, then="questions")
        honest = attack_task(c, phase, "honest")
        approve(c, phase)
        agent = wait_for("the agent to ask", lambda: _waiting(c, task.id))
        control = tmp_path / "workspace" / "agents" / agent.id
        assert (control / "prompt.md").is_symlink() and (control / "answers.json").is_symlink()
        answer = orch.QuestionAnswer(question_id="q1", answer="this one")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=agent.id, answers=[answer]), timeout=30)
        c.wait_task(task.id, COMPLETED)
        c.wait_task(honest.id, COMPLETED)
        assert {name: victim.read_text() for name, victim in victims.items()} == dict.fromkeys(victims, "precious\n")
        assert not (control / "prompt.md").is_symlink() and "this one" in (control / "answers.json").read_text()


def test_output_symlinked_to_the_orchestrators_token_is_never_handed_out(tmp_path: Path) -> None:
    with hostile_cluster(tmp_path, OUTSIDE_SANDBOX) as c:
        token = (c.auth_dir / "orchestrator.token").read_text().strip()
        phase = c.phase(c.initiative("Token", c.project()), "P")
        steal = attack_task(c, phase, "steal", do=[{"symlink": "output", "to": str(c.auth_dir / "orchestrator.token")}])
        honest = attack_task(c, phase, "honest")
        approve(c, phase)
        c.wait_task(steal.id, COMPLETED)
        c.wait_task(honest.id, COMPLETED)
        [agent] = c.agents_of(steal.id)
        streamed = b"".join(
            chunk.data for chunk in c.orch.StreamAgentOutput(orch.StreamAgentOutputRequest(agent_id=agent.id))
        )
        shown = c.cw("task", "show", steal.id).stdout
        assert token and token not in streamed.decode(errors="replace") and token not in shown
        assert token not in (tmp_path / "store.db").read_bytes().decode(errors="replace")


def test_a_forged_shim_json_naming_another_process_does_not_get_it_killed(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    gate = tmp_path / "gate"
    shims: list[int] = []  # the cluster's cleanup reads shim.json, which names the victim here
    try:
        started = process.start_time(victim.pid)
        forged = json.dumps({"pid": victim.pid, "start_time": started, "output_offset": 0})
        with hostile_cluster(tmp_path, OUTSIDE_SANDBOX) as c:
            phase = c.phase(c.initiative("Forged", c.project()), "P")
            task = attack_task(c, phase, "forger", do=[{"write": "shim", "text": forged}], wait_for=str(gate))
            approve(c, phase)
            wait_for("the forged shim.json", lambda: _control_with(c, task.id, "shim.json", containing=forged))
            [agent] = c.agents_of(task.id)
            shims.append(agent.pid)
            assert c.orchestrator is not None
            c.orchestrator.kill()  # a restart: the orchestrator now knows the shim by its files only
            c.start_orchestrator()
            c.orch.StopAgent(orch.StopAgentRequest(agent_id=agent.id), timeout=30)
            wait_for("the real shim to end", lambda: process.start_time(agent.pid) is None, 30)
            assert victim.poll() is None and process.start_time(victim.pid) == started
            other = c.phase(c.initiative("Other", c.project("other")), "Q")
            honest = attack_task(c, other)
            approve(c, other)
            c.wait_task(honest.id, COMPLETED)
            assert c.agents_of(task.id)[0].status == agent_pb2.AGENT_STATUS_STOPPED
    finally:
        victim.kill()
        victim.wait(10)
        for shim in shims:
            if process.start_time(shim) is not None:
                process.signal_group(shim, signal.SIGKILL)


def test_a_nosy_agent_in_the_sandbox_fails_at_every_try_and_its_work_lands(tmp_path: Path) -> None:
    running = Cluster(tmp_path, [HOSTILE], sandbox_root=False)
    try:
        running.start_store()
        running.start_orchestrator()
        c = running
        project = c.project()
        initiative = c.initiative("Nosy", project)
        first = c.phase(initiative, "First")
        honest = attack_task(c, first)
        approve(c, first)
        c.wait_phase(first.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)  # its branches moved for the last time
        [honest_agent] = c.agents_of(honest.id)
        workspace = tmp_path / "workspace"
        clone = workspace / "repos" / project.id
        other_prompt = workspace / "agents" / honest_agent.id / "prompt.md"
        assert other_prompt.exists()
        user_repo = tmp_path / "user" / "app"
        before = (_refs(clone), _refs(user_repo))
        paths = {
            "client_token": str(c.auth_dir / "client.token"),
            "orchestrator_token": str(c.auth_dir / "orchestrator.token"),
            "secrets_key": str(c.auth_dir / "secrets.key"),
            "database": str(tmp_path / "store.db"),
            "agents": str(workspace / "agents"),
            "other_prompt": str(other_prompt),
            "outside": str(tmp_path / "outside.txt"),
            "user_repo_file": str(user_repo / "nosy.txt"),
            "workspace_file": str(workspace / "nosy.txt"),
            "objects": str(clone / ".git" / "objects"),
        }
        second = c.phase(initiative, "Second")
        nosy = attack_task(c, second, "nosy", do=[{"nosy": paths}], then="done")
        approve(c, second)
        c.wait_task(nosy.id, COMPLETED)
        tries = json.loads((c.state_dir / f"nosy-{nosy.id}.json").read_text())
        failed = {what: result for what, result in tries.items() if not result.startswith("ok")}
        own_repo_only = {"move another branch here"}  # its own repository's ref: never fetched back
        assert set(failed) == set(tries) - own_repo_only, tries
        assert tries["uid"] == "1000" and tries["others' prompts found"] == "none"
        assert not any(Path(paths[name]).exists() for name in ("outside", "user_repo_file", "workspace_file"))
        assert not (clone / ".git" / "objects" / "nosy").exists()
        after = (_refs(clone), _refs(user_repo))
        assert after[1] == before[1]
        assert {ref: sha for ref, sha in after[0].items() if ref in before[0]} == before[0]
        c.wait_phase(second.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert f"work-{nosy.id}.txt" in {f.path for p in c.diff(second.id).projects for f in p.files}
    finally:
        running.close()


def _refs(repository: Path) -> dict[str, str]:
    listing = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in listing.splitlines())


def _waiting(c: Cluster, task_id: str) -> agent_pb2.Agent | None:
    waiting = [a for a in c.agents_of(task_id) if a.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT]
    return waiting[0] if waiting else None


def _control_with(
    c: Cluster, task_id: str, name: str, is_fifo: bool = False, containing: str | None = None
) -> Path | None:
    """The task's agent's control directory, once its file `name` is as the attack makes it."""
    for agent in c.agents_of(task_id):
        control = c.root / "workspace" / "agents" / agent.id
        path = control / name
        if is_fifo and path.is_fifo():
            return control
        if containing is not None and path.is_file() and path.read_text() == containing:
            return control
    return None


def _peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_limits_and_network_off_leave_ordinary_work_done(tmp_path: Path) -> None:
    flags = ["--agent-max-processes", "64", "--agent-max-memory", "2048", "--agent-network", "off"]
    with hostile_cluster(tmp_path, flags) as c:
        phase = c.phase(c.initiative("Limited", c.project()), "P")
        honest = attack_task(c, phase)
        approve(c, phase)
        c.wait_task(honest.id, COMPLETED)
        [agent] = c.agents_of(honest.id)
        output = (tmp_path / "workspace" / "agents" / agent.id / "output.jsonl").read_text()
        assert "no process limit" not in output or not os.access("/sys/fs/cgroup/pids", os.W_OK)
