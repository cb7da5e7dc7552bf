"""The pure parts of checkpoints and of what a run left: which files a checkpoint takes, the size cap,
the identity agents commit with, where a run works, and how its settlement says what was left."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cw.store.v1 import agent_pb2, message_pb2, task_pb2
from orchestrator_service import leftovers, outcomes
from orchestrator_service.agents import launcher
from orchestrator_service.controllers.agent_runs.workdirs import describe_outside, place_for
from orchestrator_service.controllers.agents import outcome_label
from orchestrator_service.dispatch import AgentOutcome, OutcomeKind
from orchestrator_service.git import checkpoints
from orchestrator_service.git.checkpoints import Change, Identity
from orchestrator_service.git.repo import GitError
from orchestrator_service.leftovers import Left
from orchestrator_service.paths import UnsafeName


def test_status_entries_a_checkpoint_takes() -> None:
    output = "\0".join(
        [
            " M changed.txt",
            " D gone.txt",
            " T now-a-link",
            "?? new dir/with space.txt",
            "?? -rf",
            "M  staged-only.txt",  # the index differs from the tip, the file does not: nothing left
            "!! ignored.log",
        ]
    )
    assert checkpoints.parse_status(output + "\0") == [
        "changed.txt",
        "gone.txt",
        "now-a-link",
        "new dir/with space.txt",
        "-rf",
    ]
    assert checkpoints.parse_status("") == []


def test_files_over_the_cap_stay_out_deletions_and_links_never_do() -> None:
    chosen = checkpoints.select(
        [Change("small", 10), Change("exact", 100), Change("big", 101), Change("deleted", None)], 100
    )
    assert chosen.taken == ["small", "exact", "deleted"]
    assert chosen.left_out == [Change("big", 101)]
    assert checkpoints.select([Change("empty", 0)], 0).taken == ["empty"]


def test_the_left_out_files_are_listed_then_counted() -> None:
    many = [Change(f"f{i}.bin", 2000 + i) for i in range(25)]
    said = checkpoints.describe_left_out(many, 1000, "app")
    assert said.startswith(
        "left out of the checkpoint (over 1000 bytes), still in the worktree: app/f0.bin (2000 bytes)"
    )
    assert said.endswith("and 5 more") and "f19.bin" in said and "f20.bin" not in said


def test_an_agent_commits_as_itself_at_the_configured_domain() -> None:
    identity = checkpoints.agent_identity("tidy-jackal", "agents.example.org")
    assert identity == Identity("tidy-jackal", "tidy-jackal@agents.example.org")
    assert launcher.identity_environment(identity) == {
        "GIT_AUTHOR_NAME": "tidy-jackal",
        "GIT_AUTHOR_EMAIL": "tidy-jackal@agents.example.org",
        "GIT_COMMITTER_NAME": "tidy-jackal",
        "GIT_COMMITTER_EMAIL": "tidy-jackal@agents.example.org",
    }
    assert identity.config() == ["-c", "user.name=tidy-jackal", "-c", "user.email=tidy-jackal@agents.example.org"]


@pytest.mark.parametrize("name", ["a b", "x\nuser.name=evil", "", "a;b", "a=b"])
def test_an_identity_that_could_carry_more_never_reaches_git(name: str) -> None:
    with pytest.raises(GitError):
        Identity(name, "a@b").config()


@pytest.mark.parametrize("domain", ["", "-x.org", "a..b", "a b", "x.org\n", "a_b.org", "x" * 64 + ".org"])
def test_an_email_domain_is_plain_labels(domain: str) -> None:
    with pytest.raises(ValueError):
        checkpoints.check_email_domain(domain)
    assert checkpoints.check_email_domain("agents.cw.invalid") == "agents.cw.invalid"


def test_one_project_the_run_works_in_its_worktree_several_beside_them(tmp_path: Path) -> None:
    one = place_for(tmp_path / "t1", ["app"])
    assert one.cwd == tmp_path / "t1" / "app" and one.worktrees == {"app": tmp_path / "t1" / "app"}
    note = one.prompt_note("cw-task/t1")
    assert f"Your working directory, {tmp_path / 't1' / 'app'}, is the git worktree of project app" in note
    assert "Commit your work there" in note and "Commit" not in one.prompt_note("b", commits=False)
    two = place_for(tmp_path / "t1", ["web", "api"])
    assert two.cwd == tmp_path / "t1" and list(two.worktrees) == ["api", "web"]
    assert f"- api: {tmp_path / 't1' / 'api'}\n- web: {tmp_path / 't1' / 'web'}" in two.prompt_note("b")
    assert place_for(tmp_path / "t1", []).prompt_note("b") == ""
    with pytest.raises(UnsafeName):
        place_for(tmp_path / "t1", ["../elsewhere"])


def test_what_is_beside_the_worktrees_is_named(tmp_path: Path) -> None:
    place = place_for(tmp_path / "t1", ["api", "web"])
    assert place.outside() == []  # no directory yet
    for name in ("api", "web"):
        (tmp_path / "t1" / name).mkdir(parents=True)
    for name in ("notes.md", ".hidden"):
        (tmp_path / "t1" / name).touch()
    assert place.outside() == [".hidden", "notes.md"]
    assert describe_outside([f"f{i}" for i in range(22)], tmp_path).endswith("f19 and 2 more")


AGENT = agent_pb2.Agent(id="a1", name="tidy-jackal", task_id="t1", session_id="s")
TASK = task_pb2.Task(id="t1", status=task_pb2.TASK_STATUS_IN_PROGRESS)


def _settled(kind: str, **fields: object) -> outcomes.Settlement:
    return outcomes.settle(AGENT, TASK, AgentOutcome(kind, **fields), datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]


def test_a_done_run_that_changed_nothing_completes_flagged() -> None:
    flagged = leftovers.flag(_settled("done", summary="ok"), Left(changed_nothing=True), AGENT, "done")
    assert flagged.task is not None and flagged.task["status"] == task_pb2.TASK_STATUS_COMPLETED
    assert flagged.task["reason"] == leftovers.CHANGED_NOTHING
    assert [note.type for note in flagged.notes] == ["agent:stopped", "task:completed", "task:changed_nothing"]
    [message] = flagged.creates
    assert isinstance(message, message_pb2.CreateMessageRequest)
    assert message.message.sender_id == "a1" and not message.message.requires_response


def test_a_run_that_left_work_says_so_and_a_failure_keeps_its_own_reason() -> None:
    left = Left(
        commits={"app": "c" * 40},
        taken=3,
        left_out=["left out of the checkpoint (over 10 bytes), still in the worktree: app/big (11 bytes)"],
        outside=["stray.txt"],
        outside_reason="written beside the worktrees, in no project (not merged; kept in /w): stray.txt",
    )
    failed = leftovers.flag(_settled("crash", error="x" * 5000), left, AGENT, "crashed")
    assert failed.task is not None
    reason = failed.task["reason"]
    assert reason.startswith("left out of the checkpoint") and "stray.txt" in reason
    assert len(reason) <= outcomes.REASON_LIMIT and reason.endswith("x" * 100)
    types = [note.type for note in failed.notes]
    assert "agent:checkpointed" in types and "agent:wrote_outside" in types and "task:changed_nothing" not in types
    checkpointed = next(note for note in failed.notes if note.type == "agent:checkpointed")
    assert checkpointed.details["commits"] == {"app": "c" * 40} and checkpointed.details["outcome"] == "crashed"


def test_nothing_left_changes_nothing() -> None:
    settled = _settled("done", summary="ok")
    assert leftovers.flag(settled, Left(), AGENT, "done") == settled
    # Changed nothing matters only to a run that completes its task (a question does not).
    waiting = _settled("questions", questions=[{"id": "q1", "question": "?"}])
    assert leftovers.flag(waiting, Left(changed_nothing=True), AGENT, "waiting for answers") == waiting


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        (AgentOutcome(OutcomeKind.DONE), "done"),
        (AgentOutcome(OutcomeKind.ERROR, error="x"), "failed"),
        (AgentOutcome(OutcomeKind.CRASH, error="killed or vanished"), "crashed"),
        (AgentOutcome(OutcomeKind.RATE_LIMITED, retry_after_seconds=5), "rate limited"),
        (AgentOutcome(OutcomeKind.QUESTIONS), "waiting for answers"),
    ],
)
def test_a_checkpoint_says_how_its_run_ended(outcome: AgentOutcome, label: str) -> None:
    assert outcome_label(outcome) == label


def test_a_worktrees_size_leaves_its_git_directory_and_symlinks_targets_aside(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "objects").write_bytes(b"o" * 5000)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a" * 300)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_bytes(b"z" * 9000)
    (tmp_path / "link").symlink_to(outside)
    assert checkpoints.worktree_bytes(tmp_path) == 300 + len(str(outside))
    line = checkpoints.describe_oversize(3 * 1024**2, 1024**2, "app")
    assert line.startswith("the worktree of project app holds 3 MiB, over the 1 MiB")
    assert leftovers.Left(oversize=[line]).reasons() == [line]
