"""What a run's start asks beyond the live rows: its phase's other tasks, the names of the agents of
its initiative's tasks, its task's agents, whether any of them was sent a message.

The cache answers from what the events carried (state.py's `task_agents`, `whole_phases`, `born`,
`recipients`, kept by cache/feed.py) once it is as fresh as the start's own write: every event
before that write is applied then, so the answer is the one a read made now would give. When the
cache does not hold the whole answer (an initiative or phase older than the orchestrator's
following, an agent created before it), it is read, as before; a read of an initiative's agents is
kept, the feed adds to it from then on.
"""

from __future__ import annotations

from cw.store.v1 import agent_pb2, task_pb2
from orchestrator_service.cache.state import Cache
from orchestrator_service.store_client import StoreClient


async def agent_names(store: StoreClient, cache: Cache, initiative_id: str) -> dict[str, str]:
    """The name of the latest agent of each task of the initiative (the tasks' ids as keys)."""
    await cache.freshness.reached()
    names = cache.agent_names(initiative_id)
    if names is not None:
        return names
    request = agent_pb2.ListAgentsRequest(initiative_id=initiative_id)
    agents = await store.list_all(store.agents.ListAgents, request, "agents")
    for agent in agents:
        cache.note_agent(agent)
    if initiative_id:
        cache.agents_known.add(initiative_id)
    return {a.task_id: a.name for a in sorted(agents, key=lambda a: a.create_time.ToNanoseconds())}


async def phase_tasks(store: StoreClient, cache: Cache, phase_id: str) -> list[task_pb2.Task]:
    """Every task of the phase."""
    await cache.freshness.reached()
    held = cache.tasks_of_whole(phase_id)
    if held is not None:
        return sorted(held, key=lambda task: (task.create_time.ToNanoseconds(), task.id))  # as listed
    return await store.list_all(store.tasks.ListTasks, task_pb2.ListTasksRequest(phase_id=phase_id), "tasks")


async def agent_ids(store: StoreClient, cache: Cache, task: task_pb2.Task) -> set[str]:
    """Every agent the task has had."""
    await cache.freshness.reached()
    held = cache.agent_ids_of(task)
    if held is not None:
        return held
    found = await store.list_all(store.agents.ListAgents, agent_pb2.ListAgentsRequest(task_id=task.id), "agents")
    for agent in found:
        cache.note_agent(agent)
    return {agent.id for agent in found}


async def with_messages(cache: Cache, agent_ids: list[str]) -> list[str]:
    """The agents among these that may have been sent a message (all but those the cache knows
    were sent none)."""
    if all(agent_id not in cache.born for agent_id in agent_ids):
        return agent_ids  # nothing to skip: no wait
    await cache.freshness.reached()
    return [agent_id for agent_id in agent_ids if not cache.has_no_messages(agent_id)]
