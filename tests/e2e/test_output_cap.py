"""Bounded agent output, written as the attack: an agent prints 160 MB. Before,
the store kept all of it (store.db grew by 150 MB in 5 s); now it keeps the run's head and tail
within `--max-output-bytes`, one marker line saying what was cut, and the orchestrator goes on
serving: the phase's other task finishes and its diff is answered."""

from __future__ import annotations

import json
from pathlib import Path

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, log_chunk_pb2, phase_pb2
from tests.e2e.cluster import SCRIPTED, Cluster

CAP = 2 * 1024 * 1024
OUTPUT = 160 * 1024 * 1024
# What the store may add beyond the kept output: each chunk's row and its event, the other task.
SLACK = 2 * 1024 * 1024


def _store_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.glob("store.db*") if path.name != "store.db.lock")


def _chunks(c: Cluster, agent_id: str) -> list[log_chunk_pb2.LogChunk]:
    chunks: list[log_chunk_pb2.LogChunk] = []
    request = log_chunk_pb2.ListLogChunksRequest(agent_id=agent_id, page_size=4)
    while True:
        page = c.api.log_chunks.ListLogChunks(request, timeout=30)
        chunks += page.log_chunks
        if not page.next_page_token:
            return chunks
        request.page_token = page.next_page_token


def test_160_mb_of_output_keeps_only_its_head_and_tail_in_the_store(tmp_path: Path) -> None:
    c = Cluster(tmp_path, [f"scripted={SCRIPTED}"], orchestrator_flags=["--max-output-bytes", str(CAP)])
    try:
        c.start_store()
        c.start_orchestrator()
        phase = c.phase(c.initiative("Loud", c.project()), "P")
        loud = c.task(phase, "loud", files={"loud.txt": "l"}, output_bytes=OUTPUT)
        quiet = c.task(phase, "quiet", files={"quiet.txt": "q"})
        before = _store_bytes(tmp_path)
        c.approve(phase)
        c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW, timeout=180)

        assert _store_bytes(tmp_path) - before <= CAP + SLACK
        (agent,) = c.agents_of(loud.id)
        assert agent.outcome == agent_pb2.AGENT_OUTCOME_DONE
        assert c.agents_of(quiet.id)[0].outcome == agent_pb2.AGENT_OUTCOME_DONE
        chunks = _chunks(c, agent.id)
        contents = [chunk.content for chunk in chunks]
        markers = [json.loads(text) for text in contents if text.startswith('{"type": "cw_output_cut"')]
        assert len(markers) == 1 and markers[0]["bytes"] >= OUTPUT - CAP
        kept = sum(len(text.encode()) for text in contents if not text.startswith('{"type": "cw_output_cut"'))
        assert CAP - 2048 <= kept <= CAP
        marker_at = next(i for i, text in enumerate(contents) if text.startswith('{"type": "cw_output_cut"'))
        assert contents[0].startswith('{"type": "system"')  # the head: the agent's first lines
        assert '{"type": "result"' in "".join(contents[marker_at + 1 :])  # the tail: its last lines
        diff = c.orch.GetPhaseDiff(orchestrator_pb2.GetPhaseDiffRequest(phase_id=phase.id), timeout=30)
        assert {f.path for p in diff.projects for f in p.files} == {"loud.txt", "quiet.txt"}
        c.assert_invariants()
    finally:
        c.close()
