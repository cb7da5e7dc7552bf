"""The events the orchestrator records, each in the transaction of the change it announces. Their
types and details are listed in docs/api.md ("Events the orchestrator records")."""

from __future__ import annotations

from typing import Any

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2


def event(event_type: str, subject: Any = None, **details: Any) -> event_pb2.Event:
    """An event scoped to a task, phase, agent, initiative or project (whichever ids the subject
    carries)."""
    message = event_pb2.Event(type=event_type)
    for name in ("initiative_id", "phase_id", "task_id", "agent_id"):
        value = getattr(subject, name, "") if subject is not None else ""
        if value:
            setattr(message, name, value)
    if isinstance(subject, agent_pb2.Agent):
        message.agent_id = subject.id
    elif isinstance(subject, task_pb2.Task):
        message.task_id = subject.id
    elif isinstance(subject, phase_pb2.Phase):
        message.phase_id = subject.id
    elif isinstance(subject, initiative_pb2.Initiative):
        message.initiative_id = subject.id
    elif isinstance(subject, project_pb2.Project):
        details.setdefault("project_id", subject.id)
    message.details.update({key: value for key, value in details.items() if value is not None})
    return message
