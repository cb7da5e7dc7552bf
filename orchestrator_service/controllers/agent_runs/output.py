"""Ships agents' output into the store's log chunks, in pieces that always fit a message.

What the store keeps of one run is capped (`--max-output-bytes`): the head as it comes, up to
half the cap; past that nothing while the run goes on, and once it has ended the last half of the
cap, after one marker line saying how many bytes were cut (`cut_marker`). The agent's output file
keeps everything; an agent that prints without end grows only its own file, not the store.

The offset shipped so far lives in the store too: after a restart it is the sum of the stored
chunks' sizes plus the bytes their markers say were cut, read once per adopted agent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cw.store.v1 import agent_pb2, log_chunk_pb2
from orchestrator_service.agents import control_files, supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.store_client import StoreClient

# Well under the store's limit for one chunk (1 MiB), so a chunk always fits an answer.
CHUNK_BYTES = 512 * 1024
# What the store keeps of one run's output by default: 8 MiB of its head and 8 MiB of its tail.
DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024
# The smallest cap: a head and a tail of at least one chunk each.
MIN_MAX_OUTPUT_BYTES = 2 * CHUNK_BYTES
_MARKER = re.compile(r'\{"type": "cw_output_cut", "bytes": (\d+)\}\n')


def cut_marker(cut: int) -> str:
    """The line stored in place of the output cut from a run: one JSONL line of its own, a chunk
    of its own."""
    return json.dumps({"type": "cw_output_cut", "bytes": cut}) + "\n"


def shipped_offset(chunks: Sequence[log_chunk_pb2.LogChunk]) -> int:
    """Pure: how far into the output file the stored chunks reach (the cut bytes counted)."""
    total = 0
    for chunk in chunks:
        cut = _MARKER.fullmatch(chunk.content)
        total += int(cut.group(1)) if cut else len(chunk.content.encode())
    return total


@dataclass
class _Run:
    """Where shipping one run stands: the file offset shipped up to, the bytes of it stored."""

    offset: int
    kept: int = 0


class OutputShipper:
    def __init__(self, store: StoreClient, root: Path, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.store = store
        self.root = root
        self.head_bytes = max_bytes // 2
        self.tail_bytes = max_bytes - self.head_bytes
        self._runs: dict[str, _Run] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def ship(self, agent: agent_pb2.Agent, final: bool) -> None:
        """Copies output written since the last call into chunks (all of it when `final`), up to
        the head's share of the cap; once the run has ended (`final`), its tail after a marker.
        A run whose process is not recorded yet (claimed, being placed) has written nothing: the
        periodic call skips it rather than look in the store for chunks it cannot have."""
        if not final and not agent.HasField("pid"):
            return
        async with self._locks[agent.id]:
            files = AgentFiles.of(self.root, agent.id)
            session = await asyncio.to_thread(files.session_number)
            run = self._runs.get(agent.id) or await self._recovered(agent.id, session)
            self._runs[agent.id] = run
            while run.kept < self.head_bytes:
                limit = min(CHUNK_BYTES, self.head_bytes - run.kept)
                data, offset = await asyncio.to_thread(supervisor.read_new_output, files, run.offset, final, limit)
                if not data:
                    break
                await self._store(agent, session, data.decode(errors="replace"))
                run.offset, run.kept = offset, run.kept + len(data)
            if final and run.kept >= self.head_bytes:
                await self._ship_tail(agent, session, files, run)
            if final:
                self.forget(agent.id)

    async def _ship_tail(self, agent: agent_pb2.Agent, session: int, files: AgentFiles, run: _Run) -> None:
        """After the head, the run's last `tail_bytes`, with a marker for what lies between."""
        size = await asyncio.to_thread(control_files.size, files.output)
        start = max(run.offset, size - self.tail_bytes)
        if start > run.offset:
            await self._store(agent, session, cut_marker(start - run.offset))
            run.offset = start
        while True:
            data, offset = await asyncio.to_thread(supervisor.read_new_output, files, run.offset, True, CHUNK_BYTES)
            if not data:
                return
            await self._store(agent, session, data.decode(errors="replace"))
            run.offset = offset

    async def _recovered(self, agent_id: str, session: int) -> _Run:
        """After a restart: the offset the stored chunks reach, and what this session stored."""
        chunks = await self.store.log_chunks_of(agent_id)
        kept = sum(len(chunk.content.encode()) for chunk in chunks if chunk.session_number == session)
        return _Run(shipped_offset(chunks), kept)

    async def _store(self, agent: agent_pb2.Agent, session: int, content: str) -> None:
        chunk = log_chunk_pb2.LogChunk(
            agent_id=agent.id, agent_name=agent.name, session_number=session, content=content
        )
        await self.store.call(
            self.store.log_chunks.CreateLogChunk, log_chunk_pb2.CreateLogChunkRequest(log_chunk=chunk)
        )

    def begin(self, agent_id: str) -> None:
        """A run that starts now: everything in its output file so far is shipped already (a new
        agent has none; a resumed one shipped its earlier sessions when they were settled)."""
        files = AgentFiles.of(self.root, agent_id)
        self._runs[agent_id] = _Run(control_files.size(files.output))

    def forget(self, agent_id: str) -> None:
        """A settled run: its next session (a resume) reads the offset back from the store."""
        self._runs.pop(agent_id, None)
        self._locks.pop(agent_id, None)

    async def tail(self, agent_id: str) -> str:
        return await asyncio.to_thread(supervisor.output_tail, AgentFiles.of(self.root, agent_id))
