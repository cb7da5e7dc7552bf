"""Merge conflicts handed to an agent: a branch where the target is already merged in, with the
conflict markers committed in the files, and the check that the agent left none behind.

The branch holds both sides as commits (its merge commit has both parents), so the merge agent
works like any other (its worktree, its commits; a branch with commits is continued, never
reset), and merging its branch back into the target is a plain merge: the target is an ancestor.
"""

from __future__ import annotations

from orchestrator_service.git.repo import GitError, check_branch, git, head_ref, repository_lock
from orchestrator_service.git.workspace import Workspace

# The lines git writes around a conflict (`<<<<<<< ours` ... `>>>>>>> theirs`), as an ERE.
MARKER = r"^(<{7}|>{7})( |$)"


def prepare_merge_branch(
    ws: Workspace, project_id: str, branch: str, start: str, merge_in: str, *, message: str
) -> None:
    """Creates `branch` at `start` with `merge_in` merged into it, conflicts and all, unless it
    exists (its agent continues on it). Both are branch names; nothing is changed on them."""
    path = ws.repo(project_id)
    with repository_lock(path):
        if ws.branch_exists(project_id, branch):
            return
        worktree = ws.merge_worktree(project_id)
        git(worktree, "checkout", "--quiet", "--force", "--detach", head_ref(start), "--")
        git(worktree, "reset", "--quiet", "--hard", head_ref(start))
        try:
            result = git(worktree, "merge", "--no-ff", "--no-commit", "--no-edit", head_ref(merge_in), check=False)
            merging = git(worktree, "rev-parse", "--verify", "--quiet", "MERGE_HEAD", check=False).returncode == 0
            if result.returncode != 0 and not merging:
                raise GitError(f"merging {merge_in} into {start} failed: {result.stderr.strip()}")
            if merging:
                git(worktree, "add", "--all", "--", ".")
                git(worktree, "commit", "--quiet", "--no-verify", "-m", message)
            git(worktree, "branch", "--no-track", "--end-of-options", check_branch(branch), "HEAD")
        finally:
            git(worktree, "merge", "--abort", check=False)
            git(worktree, "reset", "--quiet", "--hard", "HEAD")


def files_with_markers(ws: Workspace, project_id: str, base: str, branch: str) -> list[str]:
    """Files the branch changes against `base` that still hold a conflict marker line."""
    path = ws.repo(project_id)
    changed = git(path, "diff", "--name-only", "--no-renames", f"{head_ref(base)}...{head_ref(branch)}", "--")
    names = [name for name in changed.stdout.splitlines() if name]
    if not names:
        return []
    found = git(
        path, "--literal-pathspecs", "grep", "-l", "-E", "-e", MARKER, head_ref(branch), "--", *names, check=False
    )
    if found.returncode > 1:
        raise GitError(f"git grep failed: {found.stderr.strip()}")
    prefix = head_ref(branch) + ":"
    return sorted(line.removeprefix(prefix) for line in found.stdout.splitlines() if line)
