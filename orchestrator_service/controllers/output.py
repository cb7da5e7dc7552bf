"""Ships agents' output into the store's log chunks, in pieces that always fit a message.

The offset shipped so far lives in the store too: after a restart it is the sum of the stored
chunks' sizes, read once per adopted agent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

from cw.store.v1 import agent_pb2, log_chunk_pb2
from orchestrator_service.agents import control_files, supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.store_client import StoreClient

# Well under the store's limit for one chunk (1 MiB), so a chunk always fits an answer.
CHUNK_BYTES = 512 * 1024


class OutputShipper:
    def __init__(self, store: StoreClient, root: Path) -> None:
        self.store = store
        self.root = root
        self._offsets: dict[str, int] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def ship(self, agent: agent_pb2.Agent, final: bool) -> None:
        """Copies output written since the last call into chunks (all of it when `final`)."""
        async with self._locks[agent.id]:
            files = AgentFiles.of(self.root, agent.id)
            if agent.id not in self._offsets:
                chunks = await self.store.log_chunks_of(agent.id)
                self._offsets[agent.id] = sum(len(chunk.content.encode()) for chunk in chunks)
            session = await asyncio.to_thread(files.session_number)
            while True:
                data, offset = await asyncio.to_thread(
                    supervisor.read_new_output, files, self._offsets[agent.id], final, CHUNK_BYTES
                )
                if not data:
                    break
                chunk = log_chunk_pb2.LogChunk(
                    agent_id=agent.id,
                    agent_name=agent.name,
                    session_number=session,
                    content=data.decode(errors="replace"),
                )
                await self.store.call(
                    self.store.log_chunks.CreateLogChunk, log_chunk_pb2.CreateLogChunkRequest(log_chunk=chunk)
                )
                self._offsets[agent.id] = offset
            if final:
                self.forget(agent.id)

    def begin(self, agent_id: str) -> None:
        """A run that starts now: everything in its output file so far is shipped already (a new
        agent has none; a resumed one shipped its earlier sessions when they were settled)."""
        files = AgentFiles.of(self.root, agent_id)
        self._offsets[agent_id] = control_files.size(files.output)

    def forget(self, agent_id: str) -> None:
        """A settled run: its next session (a resume) reads the offset back from the store."""
        self._offsets.pop(agent_id, None)
        self._locks.pop(agent_id, None)

    async def tail(self, agent_id: str) -> str:
        return await asyncio.to_thread(supervisor.output_tail, AgentFiles.of(self.root, agent_id))
