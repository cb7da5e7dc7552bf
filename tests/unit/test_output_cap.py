"""The offset a restarted orchestrator resumes shipping a run's output from (controllers/agent_runs/output.py):
the stored chunks' sizes, with what a marker says was cut counted as shipped."""

from __future__ import annotations

from cw.store.v1 import log_chunk_pb2
from orchestrator_service.controllers.agent_runs.output import cut_marker, shipped_offset


def test_the_shipped_offset_counts_cut_bytes_and_not_the_marker_itself() -> None:
    head, tail = "é" * 10 + "\n", "last\n"
    chunks = [log_chunk_pb2.LogChunk(content=text) for text in (head, cut_marker(1000), tail)]
    assert shipped_offset(chunks) == len(head.encode()) + 1000 + len(tail)


def test_a_marker_inside_an_agent_s_own_lines_is_only_output() -> None:
    text = "said: " + cut_marker(10**9)
    assert shipped_offset([log_chunk_pb2.LogChunk(content=text)]) == len(text)
