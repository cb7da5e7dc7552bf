"""Merge conflicts become tasks of category MERGE (README, "Review, repair and
conversations"): pure builders of the task and its prompt, and the questions the merges controller
asks about them. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cw.store.v1 import agent_pb2, phase_pb2, task_pb2
from orchestrator_service.agents.claude_outcome import clip
from orchestrator_service.cache.state import is_merged

NAME_CHARS = 200
SUMMARY_BYTES = 1024
MAX_SIDE_LINES = 30


@dataclass(frozen=True)
class Conflict:
    """Where a merge conflicted: the project (by name), its files, and the branch merged into."""

    project: str
    files: Sequence[str]
    target: str


def is_merge_task(task: task_pb2.Task) -> bool:
    return bool(task.merge_source_task_id or task.merge_source_phase_id)


def resolving(tasks: Iterable[task_pb2.Task], source_task_id: str) -> task_pb2.Task | None:
    """The merge task still resolving the conflict of `source_task_id`, if any: while it is not
    merged, the source waits for it instead of conflicting again."""
    return next((t for t in tasks if t.merge_source_task_id == source_task_id and not is_merged(t)), None)


def blocked_by_conflict(task: task_pb2.Task, agents: Sequence[agent_pb2.Agent]) -> bool:
    """A BLOCKED task whose last run finished its work: only its merge can have blocked it (as
    cw did before merge tasks). Retrying it retries the merge, which now makes a merge task."""
    if task.status != task_pb2.TASK_STATUS_BLOCKED or is_merged(task) or not agents:
        return False
    latest = max(agents, key=lambda agent: agent.create_time.ToNanoseconds())
    return latest.outcome == agent_pb2.AGENT_OUTCOME_DONE


def _side(tasks: Iterable[task_pb2.Task]) -> list[str]:
    lines = [f"- {task.name}: {clip(task.summary, SUMMARY_BYTES) or '(no summary)'}" for task in tasks]
    if len(lines) > MAX_SIDE_LINES:
        lines = [*lines[:MAX_SIDE_LINES], f"- ... and {len(lines) - MAX_SIDE_LINES} more"]
    return lines or ["- (nothing reported)"]


def description(what: str, conflict: Conflict, source: list[str], target: list[str]) -> str:
    parts = [
        f"Resolve a merge conflict: {what} conflicts with {conflict.target} in project {conflict.project}.",
        "",
        f"Your worktree is on a branch where {conflict.target} is already merged in: the merge is committed, "
        "with git's conflict markers (<<<<<<<, =======, >>>>>>>) left in these files of project "
        f"{conflict.project} (paths in the project, in its directory {conflict.project}/):",
        *(f"- {name}" for name in conflict.files),
        "",
        "Edit each file so that it keeps what both sides meant, remove every marker, and commit. A run that "
        "leaves a marker in the files it changes is a failed attempt.",
        "",
        f"## One side: {what}",
        *source,
        "",
        f"## The other side: what {conflict.target} already holds",
        *target,
    ]
    return "\n".join(parts) + "\n"


def for_task(task: task_pb2.Task, conflict: Conflict, merged: Iterable[task_pb2.Task]) -> task_pb2.CreateTaskRequest:
    """The merge task for a task whose branch conflicts with its base branch (its phase's, or the
    initiative's for a task outside phases); `merged` is the work already there."""
    what = f"task {task.name!r}"
    merge = task_pb2.Task(
        phase_id=task.phase_id,
        initiative_id=task.initiative_id,
        name=clip(f"Resolve merge conflict: {task.name}", NAME_CHARS),
        description=description(what, conflict, _side([task]), _side(merged)),
        category=task_pb2.TASK_CATEGORY_MERGE,
        priority=task_pb2.TASK_PRIORITY_HIGH,
        merge_source_task_id=task.id,
    )
    if not task.phase_id and task.HasField("queue_time"):
        merge.queue_time.CopyFrom(task.queue_time)  # queued like its source
    return task_pb2.CreateTaskRequest(task=merge)


def for_phase(
    phase: phase_pb2.Phase,
    conflict: Conflict,
    own: Iterable[task_pb2.Task],
    merged_phases: Sequence[tuple[str, Sequence[task_pb2.Task]]],
) -> task_pb2.CreateTaskRequest:
    """The merge task for a phase whose branch conflicts with the initiative branch (MergePhase); it
    joins the phase, and once its work is merged, so is the phase."""
    target = [line for name, tasks in merged_phases for line in [f"Phase {name}:", *_side(tasks)]]
    merge = task_pb2.Task(
        phase_id=phase.id,
        initiative_id=phase.initiative_id,
        name=clip(f"Resolve merge conflict: phase {phase.name}", NAME_CHARS),
        description=description(f"phase {phase.name!r}", conflict, _side(own), target or _side([])),
        category=task_pb2.TASK_CATEGORY_MERGE,
        priority=task_pb2.TASK_PRIORITY_HIGH,
        merge_source_phase_id=phase.id,
    )
    return task_pb2.CreateTaskRequest(task=merge)


CONFLICT_REASON_END = "; a merge task resolves it"


def conflict_reason(conflict: Conflict) -> str:
    """Why work waits (on the source task, or the phase), for people."""
    files = ", ".join(conflict.files)
    return f"merging into {conflict.target} conflicts in {conflict.project}: {files}{CONFLICT_REASON_END}"


def is_conflict_reason(reason: str) -> bool:
    """A reason `conflict_reason` wrote: it no longer holds once the work is merged (any other, such
    as what a run left out of its checkpoint, stays)."""
    return reason.endswith(CONFLICT_REASON_END)
