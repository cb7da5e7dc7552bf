"""Git runs nothing an agent configured (README.md, "Git runs nothing a repository configured"), end to
end and written as the attack: while the first agent runs, the shared clone's config gets what an
agent can write into it from its worktree (`core.fsmonitor`, a `filter` driver its committed
`.gitattributes` names, `diff.external`, a textconv, colour and prefixes for diffs, hooks). The
agents' own git may run those programs (the agent's choice, inside its run); the orchestrator's
resets, merges and later agents' worktrees run none of them, and GetPhaseDiff shows the commits'
real hunks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import phase_pb2
from tests.e2e.cluster import cluster, wait_for

ATTRIBUTES = "* filter=evil diff=evil merge=evil\n"


def _program(tmp_path: Path, name: str, body: str) -> str:
    """Leaves `markers/<name>` when run outside an agent's run (no CW_AGENT_ID), then does `body`."""
    path = tmp_path / "programs" / f"{name}.sh"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n[ -n \"$CW_AGENT_ID\" ] || touch '{tmp_path / 'markers' / name}'\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _write_hostile_config(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-checkout", "post-merge", "post-commit", "reference-transaction"):
        (hooks / hook).write_text(Path(_program(tmp_path, hook, "exit 0")).read_text())
        (hooks / hook).chmod(0o755)
    settings = {
        "core.fsmonitor": _program(tmp_path, "fsmonitor", "exit 1"),
        "core.hooksPath": str(hooks),
        "filter.evil.clean": _program(tmp_path, "clean", "cat"),
        "filter.evil.smudge": _program(tmp_path, "smudge", "cat"),
        "diff.external": _program(tmp_path, "external-diff", "exit 0"),
        "diff.evil.textconv": _program(tmp_path, "textconv", "true"),
        "color.diff": "always",
        "diff.noprefix": "true",
    }
    for key, value in settings.items():
        subprocess.run(["git", "config", key, value], cwd=repo, check=True)


def test_the_orchestrator_runs_no_program_an_agent_put_in_the_clone_s_config(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        project = c.project()
        phase = c.phase(c.initiative("Hostile", project), "P")
        release = tmp_path / "release"
        first = c.task(phase, "first", files={".gitattributes": ATTRIBUTES, "a.txt": "real a\n"}, wait_for=str(release))
        second = c.task(phase, "second", after=[first.id], files={"b.txt": "real b\n"})
        c.approve(phase)
        repo = tmp_path / "workspace" / "repos" / project.id
        wait_for("the first agent to run", lambda: c.agents_of(first.id))
        _write_hostile_config(repo, tmp_path)
        release.touch()
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=120)

        assert sorted(path.name for path in (tmp_path / "markers").iterdir()) == []
        assert c.get_task(second.id).merge_time.seconds  # its worktree made after the config was written
        diff = c.orch.GetPhaseDiff(orchestrator_pb2.GetPhaseDiffRequest(phase_id=phase.id), timeout=30)
        (shown,) = diff.projects
        assert "\x1b[" not in shown.unified_diff
        for name, line in ((".gitattributes", ATTRIBUTES), ("a.txt", "real a\n"), ("b.txt", "real b\n")):
            assert f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+{line}" in shown.unified_diff
        assert {(f.path, f.additions) for f in shown.files} == {(".gitattributes", 1), ("a.txt", 1), ("b.txt", 1)}
