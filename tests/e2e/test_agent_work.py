"""Nothing an agent does is lost (README.md, "What happens to uncommitted work"): where it works, the
git identity it commits with, and the checkpoint of whatever it leaves when its run ends. Both
services as processes, scripted agents, real git, and a machine with no git identity at all (HOME
empty, no global git configuration)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.leftovers import CHANGED_NOTHING
from tests.e2e.cluster import SCRIPTED, Cluster, wait_for
from tests.e2e.test_claude_provider import claude_cluster

COMPLETED = task_pb2.TASK_STATUS_COMPLETED
CAP = 1000
IDENTITY_VARIABLES = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL")


@pytest.fixture(autouse=True)
def no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The services (and so their agents) run where git knows nobody: a plain `git commit` fails."""
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-such-gitconfig"))
    for name in IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    probe = tmp_path / "probe"
    subprocess.run(["git", "init", "-q", str(probe)], check=True)
    (probe / "f").write_text("f")
    subprocess.run(["git", "add", "f"], cwd=probe, check=True)
    refused = subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=probe, capture_output=True, check=False)
    assert refused.returncode != 0, "this machine has a git identity: the test would prove nothing"
    return home


@contextmanager
def services(root: Path) -> Iterator[Cluster]:
    c = Cluster(root, [f"scripted={SCRIPTED}"], orchestrator_flags=["--checkpoint-max-file-bytes", str(CAP)])
    try:
        c.start_store()
        c.start_orchestrator()
        yield c
    finally:
        c.close()


def _files(c: Cluster, phase_id: str, project: str = "") -> set[str]:
    diff = c.diff(phase_id)
    return {f.path for p in diff.projects if not project or p.project_name == project for f in p.files}


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout


def _events(c: Cluster, kind: str, agent_ids: set[str]) -> list[dict[str, object]]:
    return [dict(e.details) for e in c.events() if e.type == kind and e.agent_id in agent_ids]


def test_what_a_run_leaves_is_committed_for_it_whatever_it_committed(tmp_path: Path) -> None:
    with services(tmp_path) as c:
        phase = c.phase(c.initiative("Nothing lost", c.project()), "P")
        committed = c.task(phase, "committed", files={"committed.txt": "by a plain git commit"})
        forgot = c.task(phase, "forgot", uncommitted={"forgot.txt": "never committed"}, beside={"cwd.txt": "in cwd"})
        nothing = c.task(phase, "nothing")
        big = c.task(phase, "big", uncommitted={"big.bin": "x" * (CAP + 1), "small.txt": "small"})
        limited = c.task(phase, "limited", uncommitted={"limited.txt": "l"}, rate_limited_times=1)
        failing = c.task(phase, "failing", uncommitted={"failing.txt": "f"}, error_times=1)
        c.approve(phase)
        for task in (committed, forgot, nothing, big, limited, failing):
            c.wait_task(task.id, COMPLETED)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)

        expected = {"committed.txt", "forgot.txt", "cwd.txt", "small.txt", "limited.txt", "failing.txt"}
        assert _files(c, phase.id) == expected
        for task, how in ((limited, "rate limited"), (failing, "failed")):
            first = c.agents_of(task.id)[0]
            assert [event["outcome"] for event in _events(c, "agent:checkpointed", {first.id})] == [how]
        [agent] = c.agents_of(committed.id)
        worktree = Path(agent.worktree_id)
        assert worktree == tmp_path / "workspace" / "tasks" / committed.id / "app"  # its cwd: the worktree
        author = _git(worktree, "log", "-1", "--format=%an <%ae> %s").strip()
        assert author == f"{agent.name} <{agent.name}@agents.cw.invalid> attempt 1"

        [forgetful] = c.agents_of(forgot.id)
        forgot_tip = Path(forgetful.worktree_id)
        subject = _git(forgot_tip, "log", "-1", "--format=%an|%s").strip()
        assert subject == f"{forgetful.name}|cw checkpoint: what {forgetful.name} left when its run ended (done)"
        assert _git(forgot_tip, "status", "--porcelain") == ""
        [checkpointed] = _events(c, "agent:checkpointed", {forgetful.id})
        assert checkpointed["outcome"] == "done" and checkpointed["files"] == 2
        assert c.get_task(forgot.id).reason == "" and c.get_task(committed.id).reason == ""

        flagged = c.get_task(nothing.id)
        assert flagged.reason == CHANGED_NOTHING
        [idle] = c.agents_of(nothing.id)
        assert any(e.type == "task:changed_nothing" and e.task_id == nothing.id for e in c.events())
        [told] = c.messages_from(idle.id)
        assert "changed nothing" in told.content
        inbox = c.cw_json("inbox")
        assert any(item["id"] == told.id for item in inbox)

        listed = c.get_task(big.id).reason
        assert "big.bin (1001 bytes)" in listed and "small.txt" not in listed
        [heavy] = c.agents_of(big.id)
        assert (Path(heavy.worktree_id) / "big.bin").exists()  # left where it was, never deleted
        [with_big] = _events(c, "agent:checkpointed", {heavy.id})
        assert "big.bin" in str(with_big["left_out"])
        c.assert_invariants()


def test_a_killed_run_loses_nothing_and_its_retry_continues_in_the_same_worktree(tmp_path: Path) -> None:
    left, retry_may_go = tmp_path / "left", tmp_path / "retry-may-go"
    with services(tmp_path) as c:
        phase = c.phase(c.initiative("Killed", c.project()), "P")
        task = c.task(
            phase,
            "t",
            uncommitted={"half.txt": "half done"},
            wait_after_leaving=str(left),
            retry_wait_for=str(retry_may_go),
            files={"rest.txt": "the rest"},
        )
        c.approve(phase)
        first = wait_for("the first agent with a pid", lambda: [a for a in c.agents_of(task.id) if a.pid])[0]
        wait_for("half.txt written", (Path(first.worktree_id) / "half.txt").exists)
        os.killpg(first.pid, signal.SIGKILL)  # the shim and the agent, mid-run

        def second_running() -> agent_pb2.Agent | None:
            later = [a for a in c.agents_of(task.id) if a.id != first.id and a.pid]
            return later[0] if later else None

        second = wait_for("the retry's agent", second_running)
        assert second.worktree_id == first.worktree_id  # the same path for every attempt
        assert (Path(second.worktree_id) / "half.txt").read_text() == "half done"
        crashed = c.agents_of(task.id)[0]
        assert crashed.status == agent_pb2.AGENT_STATUS_CRASHED
        [checkpoint] = _events(c, "agent:checkpointed", {first.id})
        assert checkpoint["outcome"] == "crashed"
        retry_may_go.touch()
        done = c.wait_task(task.id, COMPLETED)
        assert done.retry_count == 1
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c, phase.id) == {"half.txt", "rest.txt"}
        c.assert_invariants()


def test_several_projects_are_named_and_what_is_written_beside_them_is_reported(tmp_path: Path) -> None:
    with services(tmp_path) as c:
        initiative = c.initiative("Two projects", c.project("api"), c.project("web"))
        phase = c.phase(initiative, "P")
        task = c.task(phase, "t", files={"both.txt": "in each"}, beside={"stray.txt": "in no project"})
        c.approve(phase)
        done = c.wait_task(task.id, COMPLETED)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c, phase.id, "api") == _files(c, phase.id, "web") == {"both.txt"}

        [agent] = c.agents_of(task.id)
        task_dir = tmp_path / "workspace" / "tasks" / task.id
        assert Path(agent.worktree_id) == task_dir
        assert (task_dir / "stray.txt").read_text() == "in no project"  # kept, never merged
        assert "stray.txt" in done.reason and "written beside the worktrees" in done.reason
        assert f"kept in tasks/{task.id})" in done.reason and str(tmp_path) not in done.reason
        [outside] = _events(c, "agent:wrote_outside", {agent.id})
        assert outside["paths"] == ["stray.txt"]
        prompts = (c.state_dir / f"prompts-{task.id}.txt").read_text()
        assert f"- api: {task_dir / 'api'}" in prompts and f"- web: {task_dir / 'web'}" in prompts
        told = json.loads(
            next(line for line in Path(agent.output_file_path).read_text().splitlines() if '"worktrees"' in line)
        )
        assert told["worktrees"] == {"api": str(task_dir / "api"), "web": str(task_dir / "web")}
        c.assert_invariants()


def test_a_stopped_run_is_checkpointed_once_its_process_is_gone(tmp_path: Path) -> None:
    never = tmp_path / "never"
    with services(tmp_path) as c:
        phase = c.phase(c.initiative("Stopped", c.project()), "P")
        task = c.task(phase, "t", uncommitted={"draft.txt": "a draft"}, wait_after_leaving=str(never))
        c.approve(phase)
        agent = wait_for("a running agent", lambda: [a for a in c.agents_of(task.id) if a.pid])[0]
        wait_for("draft.txt written", (Path(agent.worktree_id) / "draft.txt").exists)
        c.orch.StopAgent(orch.StopAgentRequest(agent_id=agent.id), timeout=30)
        [event] = wait_for("the stop's checkpoint", lambda: _events(c, "agent:checkpointed", {agent.id}))
        assert event["outcome"] == "stopped"
        assert "draft.txt" in _git(Path(agent.worktree_id), "ls-tree", "-r", "--name-only", "HEAD")
        assert _git(Path(agent.worktree_id), "status", "--porcelain") == ""
        c.assert_invariants()


README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE_MARKER = "<!-- tested: the example agent runs in tests/e2e/test_agent_work.py -->"


def test_the_readme_example_agent_does_a_task_with_a_plain_commit(tmp_path: Path) -> None:
    text = README.read_text()
    block = text[text.index(EXAMPLE_MARKER) :].split("```python\n", 1)[1].split("```", 1)[0]
    agent = tmp_path / "my_agent.py"
    agent.write_text(block)
    c = Cluster(tmp_path, [f"mine={sys.executable} {agent}"])
    try:
        c.start_store()
        c.start_orchestrator()
        phase = c.phase(c.initiative("Example", c.project()), "P")
        task = c.task(phase, "notes")
        c.approve(phase)
        done = c.wait_task(task.id, COMPLETED)
        assert (done.summary, done.reason) == ("wrote NOTES.md", "")
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c, phase.id) == {"NOTES.md"}
        [run] = c.agents_of(task.id)
        assert _git(Path(run.worktree_id), "log", "-1", "--format=%an %s").strip() == f"{run.name} Notes on the task"
    finally:
        c.close()


def test_claude_code_resumes_where_it_began_and_what_it_wrote_is_merged(tmp_path: Path) -> None:
    """What the real CLI once did: it wrote a file with its Write tool and committed nothing;
    the task completed with an empty diff, the file beside the worktree. Now the file is in the
    worktree, its checkpoint is merged, and the resume finds its session in the same directory."""
    with claude_cluster(tmp_path, ["one@example.com"]) as c:
        phase = c.phase(c.initiative("Claude", c.project()), "P")
        task = c.task(phase, "hello", questions_rounds=1, write={"hello.txt": "hello from claude\n"})
        c.approve(phase)
        waiting = wait_for(
            "the question",
            lambda: [a for a in c.agents_of(task.id) if a.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT],
        )[0]
        answer = orch.QuestionAnswer(question_id="q1", answer="spaces")
        c.orch.AnswerQuestions(orch.AnswerQuestionsRequest(agent_id=waiting.id, answers=[answer]), timeout=10)
        c.wait_task(task.id, COMPLETED)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert _files(c, phase.id) == {"hello.txt"}
        [agent] = c.agents_of(task.id)
        worktree = tmp_path / "workspace" / "tasks" / task.id / "app"
        output = Path(agent.output_file_path).read_text().splitlines()
        started_in = [json.loads(line)["cwd"] for line in output if '"subtype":"init"' in line.replace(" ", "")]
        assert started_in == [str(worktree), str(worktree)]
        assert not [p for p in (tmp_path / "workspace" / "tasks" / task.id).iterdir() if p.name != "app"]


def test_a_worktree_grown_past_its_limit_is_said_when_its_run_settles(tmp_path: Path) -> None:
    """The size check (`--agent-max-worktree-bytes`): measured as the run settles, said in the task's reason and the
    checkpoint's event; nothing is removed or left out for it."""
    limit = 20_000
    c = Cluster(tmp_path, [f"scripted={SCRIPTED}"], orchestrator_flags=["--agent-max-worktree-bytes", str(limit)])
    try:
        c.start_store()
        c.start_orchestrator()
        phase = c.phase(c.initiative("Bulky", c.project()), "P")
        bulky = c.task(phase, "bulky", uncommitted={"bulk.txt": "x" * (limit + 10_000)})
        lean = c.task(phase, "lean", uncommitted={"lean.txt": "small"})
        c.approve(phase)
        for task in (bulky, lean):
            c.wait_task(task.id, COMPLETED)
        said = c.get_task(bulky.id).reason
        assert "the worktree of project app holds" in said and "--agent-max-worktree-bytes" in said, said
        assert c.get_task(lean.id).reason == ""
        [agent] = c.agents_of(bulky.id)
        [checkpointed] = _events(c, "agent:checkpointed", {agent.id})
        assert "over the" in str(checkpointed["oversize"])
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
        assert {"bulk.txt", "lean.txt"} <= _files(c, phase.id)
    finally:
        c.close()
