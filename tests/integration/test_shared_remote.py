"""The shared remote, git side: two orchestrators' clones of one project (two workspaces) and one
bare repository. A branch only ever moves forward there (pushes are never forced); a clone catches
up before building on a branch; when the two hold different commits, the remote's wins and the
clone's own commits are kept under refs/cw-kept/, never lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cw.store.v1 import initiative_pb2, project_pb2, task_pb2
from orchestrator_service.git import branches, shared
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import Workspace, task_branch
from tests.e2e.cluster import make_git_repo

TASK = "tTTTTTTTTTTTTTTTTTTTT"


def test_a_stored_remote_that_is_not_a_repository_is_never_created(tmp_path: Path) -> None:
    """The attack: a client stores a project whose shared remote is a path of its choosing; the
    orchestrator used to make that directory and a bare repository in it. Now only its own
    `--shared-remotes` are made (ProjectController); any other missing remote is an error."""
    origin = make_git_repo(tmp_path / "user" / "app")
    chosen = tmp_path / "elsewhere" / "planted.git"
    project = project_pb2.Project(id="p1", name="app", url=str(origin), shared_remote=str(chosen))
    machine = Machine(tmp_path / "east", project, initiative_pb2.Initiative(id="i1", branch="cw/work"))
    with pytest.raises(GitError, match="is not a git repository"):
        machine.prepare()
    assert not chosen.parent.exists()


def _git(path: Path, *args: str) -> str:
    run = ["git", "-c", "user.name=agent", "-c", "user.email=agent@test", *args]
    return subprocess.run(run, cwd=path, capture_output=True, text=True, check=True).stdout.strip()


class Machine:
    """One orchestrator's workspace, its clone of the project, and an agent worktree on the task."""

    def __init__(self, root: Path, project: project_pb2.Project, initiative: initiative_pb2.Initiative) -> None:
        self.ws = Workspace(root)
        self.project, self.initiative = project, initiative
        self.ws.sync(project.id, project.url)
        self.task = task_pb2.Task(id=TASK, initiative_id=initiative.id)

    def prepare(self) -> None:
        branches.prepare_task_branch(self.ws, self.project, self.initiative, self.task)

    def commit(self, name: str) -> str:
        """An agent's commit on the task branch, in a repository of its own, fetched back into the
        orchestrator's clone when its run ends (git/agent_repos.py)."""
        where = self.ws.root / "agents" / name / "work"
        branches.add_task_worktree(self.ws, self.project, self.task, where)
        (where / self.project.name / f"{name}.txt").write_text(name)
        _git(where / self.project.name, "add", "-A")
        _git(where / self.project.name, "commit", "-q", "-m", name)
        assert branches.fetch_task_branch(self.ws, self.project, TASK, where)
        return _git(where / self.project.name, "rev-parse", "HEAD")

    def tip(self) -> str:
        return self.ws.commit_of(self.project.id, f"refs/heads/{task_branch(TASK)}")


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Machine, Machine, Path]:
    origin = make_git_repo(tmp_path / "user" / "app")
    remote = tmp_path / "shared" / "p1.git"
    shared.create_bare(str(remote))
    project = project_pb2.Project(id="p1", name="app", url=str(origin), shared_remote=str(remote))
    initiative = initiative_pb2.Initiative(id="i1", branch="cw/work")
    return Machine(tmp_path / "east", project, initiative), Machine(tmp_path / "west", project, initiative), remote


def test_a_run_elsewhere_continues_on_the_pushed_branch(machines: tuple[Machine, Machine, Path]) -> None:
    east, west, remote = machines
    east.prepare()
    first = east.commit("first")
    shared.publish_settled(east.ws, east.project, task_branch(TASK))
    west.prepare()  # west had never seen the task
    assert west.tip() == first
    second = west.commit("second")
    shared.publish_settled(west.ws, west.project, task_branch(TASK))
    assert _git(remote, "rev-parse", f"refs/heads/{task_branch(TASK)}") == second
    # Back on east, an older clone of the branch catches up instead of being pushed over.
    east.prepare()
    assert east.tip() == second


def test_a_branch_only_moves_forward_and_neither_sides_commits_are_lost(
    machines: tuple[Machine, Machine, Path],
) -> None:
    east, west, remote = machines
    east.prepare()
    base = east.commit("base")
    shared.publish_settled(east.ws, east.project, task_branch(TASK))
    west.prepare()
    # East's run ends unsettled (its machine thought dead) while west's attempt pushes.
    lost = east.commit("east-late")
    won = west.commit("west")
    shared.publish_settled(west.ws, west.project, task_branch(TASK))
    with pytest.raises(shared.PushRejected):
        shared.publish(east.ws, east.project, task_branch(TASK))  # never forced
    shared.publish_settled(east.ws, east.project, task_branch(TASK))
    assert _git(remote, "rev-parse", f"refs/heads/{task_branch(TASK)}") == won
    kept = _git(remote, "for-each-ref", "--format=%(objectname)", "refs/cw-kept/")
    assert kept.split() == [lost]  # east's commit pushed under a ref of its own
    assert east.tip() == won and base != won


def test_a_clone_behind_only_because_its_base_moved_keeps_nothing(machines: tuple[Machine, Machine, Path]) -> None:
    east, west, _ = machines
    west.prepare()  # west's task branch: the initiative branch as it was then, no commit of its own
    east.prepare()
    pushed = east.commit("work")
    shared.publish_settled(east.ws, east.project, task_branch(TASK))
    assert shared.pull(west.ws, west.project, task_branch(TASK)) == []
    assert west.tip() == pushed


def test_branches_two_orchestrators_make_at_once_end_as_the_first_pushed(
    machines: tuple[Machine, Machine, Path],
) -> None:
    east, west, remote = machines
    for machine in (east, west):
        machine.ws.sync(machine.project.id, machine.project.url)
    origin = Path(east.project.url)
    (origin / "later.txt").write_text("moved on\n")
    _git(origin, "add", "-A")
    _git(origin, "commit", "-q", "-m", "later")
    west.ws.sync(west.project.id, west.project.url)  # west saw the later main, east did not
    branches.ensure_initiative_branch(east.ws, east.project, east.initiative)
    branches.ensure_initiative_branch(west.ws, west.project, west.initiative)
    on_remote = _git(remote, "rev-parse", "refs/heads/cw/work")
    assert east.ws.commit_of("p1", "refs/heads/cw/work") == on_remote
    # West's main was newer, yet it takes the branch as pushed: one initiative branch for everyone.
    assert west.ws.commit_of("p1", "refs/heads/cw/work") == on_remote
    assert west.ws.commit_of("p1", "refs/remotes/origin/main") != on_remote


def test_nothing_happens_without_a_shared_remote(tmp_path: Path) -> None:
    origin = make_git_repo(tmp_path / "user" / "app")
    project = project_pb2.Project(id="p1", name="app", url=str(origin))
    machine = Machine(tmp_path / "east", project, initiative_pb2.Initiative(id="i1", branch="cw/work"))
    machine.prepare()
    machine.commit("work")
    assert shared.pull(machine.ws, project, task_branch(TASK)) == []
    shared.publish_settled(machine.ws, project, task_branch(TASK))
    assert _git(machine.ws.repo("p1"), "remote").split() == ["origin"]


def test_a_worktree_left_on_a_machine_follows_what_another_attempt_pushed(
    machines: tuple[Machine, Machine, Path],
) -> None:
    """The attack on checkpoints: a worktree left on one machine still holds an older attempt's
    files when another machine's attempt moved the branch on; checkpointing it as it is would have
    committed the old files over the newer work."""
    east, west, _ = machines
    east.prepare()
    where = east.ws.task_dir(TASK)
    branches.add_task_worktree(east.ws, east.project, east.task, where)
    (where / "app" / "shared.txt").write_text("east's attempt, never committed\n")
    assert east.ws.checkpoint("p1", where / "app", task_branch(TASK)).commit  # east's run settled
    shared.publish_settled(east.ws, east.project, task_branch(TASK))
    west.prepare()
    west.commit("west")  # west's attempt adds west.txt and changes shared.txt again
    west_work = west.ws.root / "agents" / "west" / "work"
    (west_work / "app" / "shared.txt").write_text("west's version\n")
    _git(west_work / "app", "commit", "-qam", "west's version")
    pushed = _git(west_work / "app", "rev-parse", "HEAD")
    assert branches.fetch_task_branch(west.ws, west.project, TASK, west_work)  # west's run settled
    shared.publish_settled(west.ws, west.project, task_branch(TASK))

    east.prepare()  # east's next attempt
    branches.add_task_worktree(east.ws, east.project, east.task, where)
    assert east.tip() == pushed
    assert (where / "app" / "shared.txt").read_text() == "west's version\n"
    assert (where / "app" / "west.txt").exists() and _git(where / "app", "status", "--porcelain") == ""
