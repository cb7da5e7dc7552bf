"""The real Codex CLI (pinned, `make agent-clis`) against a fake Responses API on 127.0.0.1: the
usage cw reads from its `exec --json` output is exactly what the API reported, turn by turn and
across a resumed thread."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator_service.agents.usage import Counts, UsageReader
from tests.fake_openai import Reply, fake_responses

ROOT = Path(__file__).resolve().parents[2]
CODEX = Path(os.environ.get("CW_TEST_CODEX") or ROOT / ".cache/agent-clis/codex/node_modules/.bin/codex")


def _codex(home: Path, work: Path, base_url: str, prompt: str, *resume: str) -> list[dict[str, object]]:
    """One `codex exec --json` run (a resumed thread with `resume`), its JSONL output appended to
    home/output.jsonl, as a shim would; its lines."""
    provider = f'{{name="fake", base_url="{base_url}", env_key="OPENAI_API_KEY", wire_api="responses"}}'
    command = [str(CODEX), "exec", *(["resume", *resume] if resume else []), "--json", "--skip-git-repo-check"]
    command += ["-c", "model_provider=fake", "-c", f"model_providers.fake={provider}", "-m", "test-model"]
    command += ["--dangerously-bypass-approvals-and-sandbox", "-"]
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(home / "codex"), "OPENAI_API_KEY": "sk-t"}
    (home / "codex").mkdir(exist_ok=True)
    done = subprocess.run(
        command, input=prompt, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with (home / "output.jsonl").open("a") as output:
        output.write(done.stdout)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.timeout(300)
def test_codex_usage_is_read_exactly_as_the_api_reported_it(tmp_path: Path) -> None:
    assert CODEX.exists(), f"{CODEX} is missing: run `make agent-clis`"
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    replies = [
        Reply("first answer", input_tokens=1234, cached_tokens=200, output_tokens=56),
        Reply("second answer", input_tokens=2000, cached_tokens=1500, output_tokens=7),
    ]
    with fake_responses(replies) as api:
        first = _codex(tmp_path, work, api.base_url, "say something")
        (thread,) = [line["thread_id"] for line in first if line.get("type") == "thread.started"]
        assert any(line.get("type") == "item.completed" and "first answer" in json.dumps(line) for line in first)
        reader = UsageReader()
        assert reader.read(tmp_path / "output.jsonl", [0], {}) == Counts(1234, 56, 200, 0)
        second_start = (tmp_path / "output.jsonl").stat().st_size
        resumed = _codex(tmp_path, work, api.base_url, "and again", str(thread))
        assert [line["thread_id"] for line in resumed if line.get("type") == "thread.started"] == [thread]
        assert len(api.requests) == 2
    assert reader.read(tmp_path / "output.jsonl", [0, second_start], {}) == Counts(3234, 63, 1700, 0)
