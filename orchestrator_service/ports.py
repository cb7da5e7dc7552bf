"""What the deciding controllers (phases, tasks, initiatives, merges), their writer and the feed's
handling of one event use of the store: the narrow port an in-memory fake implements
(tests/fakes/store.py), so those controllers run in-process in tests, with no server.

`StoreClient` (store_client.py) satisfies it over gRPC; the rest of the orchestrator (its API,
planning, review, the feed's listing) still uses the whole client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cw.store.v1 import agent_pb2, event_pb2, phase_pb2, project_pb2, task_pb2


class StorePort(Protocol):
    async def append(
        self, events: Sequence[event_pb2.Event], changes: Sequence[event_pb2.StateChange] = ()
    ) -> event_pb2.AppendEventResponse:
        """Changes and their events in one transaction; raises Stale (a precondition failed) or
        NotReady (a progress invariant refused it), and then nothing is written."""
        ...

    async def head_sequence(self) -> int:
        """The sequence of the newest event in the log."""
        ...

    async def get(self, kind: str, row_id: str) -> Any:
        """The row as stored now; a missing one raises the gRPC NOT_FOUND error."""
        ...

    async def phase_dependencies(self, phase_id: str) -> list[phase_pb2.Phase]: ...

    async def phases_in(self, initiative_id: str) -> list[phase_pb2.Phase]: ...

    async def live_agents_of(self, task_id: str) -> list[agent_pb2.Agent]: ...

    async def task_dependencies(self, task_ids: Sequence[str]) -> list[task_pb2.TaskDependency]: ...

    async def projects_of(self, initiative_id: str) -> list[project_pb2.Project]: ...


class RunStarter(Protocol):
    """What the tasks controller asks of a start (controllers/agent_runs/launches.py): make the run's rows
    and process; in tests, a fake whose agents end when the test says."""

    async def start(self, task: task_pb2.Task) -> object: ...
