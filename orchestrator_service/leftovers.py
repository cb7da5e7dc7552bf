"""Pure policy: what a finished run left behind, and how its settlement says so.

The agents controller checkpoints every worktree of a run before settling it
(controllers/agent_runs/checkpointing.py); `flag` then adds to the settlement decided by outcomes.py what a
person must know: files the checkpoint left out for their size and files written beside the
worktrees (in the task's reason, with an event), and an execute run that ended `done` having
changed nothing (completed all the same, with a reason, an event and a message in the inbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cw.store.v1 import agent_pb2, message_pb2, task_pb2
from orchestrator_service.outcomes import REASON_LIMIT, Note, Settlement

# The part of a task's reason that says what was left, at most: the rest stays the failure's own.
LEFT_REASON_LIMIT = 1500
CHANGED_NOTHING = "its agent reported done but changed nothing: no commit, and no file left in its worktrees"


@dataclass(frozen=True)
class Left:
    """What one run left, as its checkpoints found it."""

    # The checkpoint commit made in each project (by project name).
    commits: dict[str, str] = field(default_factory=dict)
    # How many paths the checkpoints took.
    taken: int = 0
    # One line per project whose checkpoint left files out (git/checkpoints.describe_left_out).
    left_out: list[str] = field(default_factory=list)
    # Entries written beside the worktrees, and the line that says so (controllers/agent_runs/workdirs.py).
    outside: list[str] = field(default_factory=list)
    outside_reason: str = ""
    # Checkpoints that failed (the worktree then keeps the files: it is not removed).
    failures: list[str] = field(default_factory=list)
    # An execute run that ended done with its task's branches holding nothing beyond their base.
    changed_nothing: bool = False
    # One line per project whose directory grew past the limit a run may leave (its size, checked
    # as the run settles: git/checkpoints.worktree_bytes).
    oversize: list[str] = field(default_factory=list)

    def reasons(self) -> list[str]:
        return [*self.oversize, *self.left_out, *([self.outside_reason] if self.outside else []), *self.failures]


def flag(settlement: Settlement, left: Left, agent: agent_pb2.Agent, label: str) -> Settlement:
    """The settlement with what the run left said in its task's reason, its events and the inbox."""
    notes = list(settlement.notes)
    if left.commits or left.left_out or left.failures or left.oversize:
        details: dict[str, Any] = {"outcome": label, "commits": dict(left.commits), "files": left.taken}
        if left.left_out or left.failures:
            details["left_out"] = [*left.left_out, *left.failures]
        if left.oversize:
            details["oversize"] = list(left.oversize)
        notes.append(Note("agent:checkpointed", "agent", details))
    if left.outside:
        notes.append(Note("agent:wrote_outside", "agent", {"paths": left.outside[:20], "count": len(left.outside)}))
    task = settlement.task
    creates = settlement.creates
    reasons = left.reasons()
    completed = task is not None and task.get("status") == task_pb2.TASK_STATUS_COMPLETED
    if left.changed_nothing and completed:
        reasons.insert(0, CHANGED_NOTHING)
        notes.append(Note("task:changed_nothing", "task", {"agent_name": agent.name}))
        creates = (*creates, _inbox_message(agent))
    if task is not None and reasons:
        task = {**task, "reason": _reason(reasons, task.get("reason"))}
    return replace(settlement, notes=notes, task=task, creates=creates)


def _reason(lines: list[str], existing: str | None) -> str:
    """What was left first (cut to its share), then the reason the outcome gave, cut from its start
    (its end holds the run's last output)."""
    said = "\n".join(lines)[:LEFT_REASON_LIMIT]
    if not existing:
        return said
    room = REASON_LIMIT - len(said) - 1
    return f"{said}\n{existing[-room:]}"


def _inbox_message(agent: agent_pb2.Agent) -> message_pb2.CreateMessageRequest:
    """The inbox item: a message from the agent's side, written by cw, asking nothing."""
    message = message_pb2.Message(
        sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
        sender_id=agent.id,
        recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
        type=message_pb2.MESSAGE_TYPE_INFO,
        content=f"cw: {agent.name} reported its task done but changed nothing (no commit, no file left in "
        "its worktrees); the task is completed with nothing to merge. Check its output "
        f"(cw agent logs {agent.name}) and retry the work if something was expected.",
    )
    return message_pb2.CreateMessageRequest(message=message)
