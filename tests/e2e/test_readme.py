"""The README's examples, run as they are written: the `buf curl` lines against a real store; the
walk-through from an empty repository to its delivered branch, with the README's own agent, and
the SDK example after it, against real services."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from cw.store.v1 import initiative_pb2
from tests.e2e.cluster import cluster
from tests.support import start_store_process

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- tested: these lines run in tests/e2e/test_readme.py -->"


def _block_after(marker: str, language: str = "sh") -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(marker) + len(marker) :]
    found = re.search(rf"\A\s*```{language}\n(.*?)```", after, re.S) if language != "sh" else None
    found = found or re.search(rf"```{language}\n(.*?)```", after, re.S)
    assert found is not None
    return found.group(1)


def _tested_block() -> str:
    return _block_after(MARKER)


def _run(block: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The lines in bash against a fresh store whose CW_HOME is `tmp_path` (token files included)."""
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log")
    try:
        env = {
            **os.environ,
            "CW_HOME": str(tmp_path),
            "CW_STORE": store.address,
            "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], capture_output=True, text=True, env=env, timeout=120, check=False
        )
    finally:
        store.kill()


def test_buf_curl_examples_work_as_shown(tmp_path: Path) -> None:
    block = _tested_block()
    assert block.count("buf curl") == 4 and block.count('-H "$AUTH"') == 4
    result = _run(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cw.store.v1.InitiativeService" in result.stdout
    assert "grpc.reflection.v1.ServerReflection" in result.stdout
    assert '"name": "User auth"' in result.stdout and '"branch": "cw/user-auth"' in result.stdout
    assert '"type": "initiative:created"' in result.stdout


def test_buf_curl_without_the_header_is_refused(tmp_path: Path) -> None:
    unauthenticated = _tested_block().splitlines()[1].replace(' -H "$AUTH" --reflect-header "$AUTH"', "")
    result = _run(unauthenticated, tmp_path)
    assert result.returncode != 0 and "not authenticated" in result.stderr  # buf curl words UNAUTHENTICATED so


def test_grpcurl_line_carries_the_same_header(tmp_path: Path) -> None:
    """grpcurl is no dependency of cw: the line runs where grpcurl is on PATH, and always reads as
    the tested create with the header the buf curl lines define."""
    line = _block_after("With grpcurl").strip()
    assert line.startswith('grpcurl -plaintext -H "$AUTH" ') and line.endswith("InitiativeService/CreateInitiative")
    assert """-d '{"initiative": {"name": "User auth"}}'""" in line
    if shutil.which("grpcurl"):
        result = _run(f"{_tested_block().splitlines()[0]}\n{line}", tmp_path)
        assert result.returncode == 0, result.stderr
        assert '"branch": "cw/user-auth"' in result.stdout


AGENT = "<!-- tested: the agent of the walk-through, run by tests/e2e/test_readme.py -->"
WALK_THROUGH = "<!-- tested: the walk-through, run by tests/e2e/test_readme.py -->"
SDK = "<!-- tested: the SDK example, run by tests/e2e/test_readme.py -->"
# A person's git identity, as the machine of someone who commits has one (the user's own first
# commit needs it; cw's agents are given theirs).
PERSON = {
    "GIT_AUTHOR_NAME": "A Person",
    "GIT_AUTHOR_EMAIL": "person@example.invalid",
    "GIT_COMMITTER_NAME": "A Person",
    "GIT_COMMITTER_EMAIL": "person@example.invalid",
}


def test_the_walk_through_goes_from_an_idea_to_a_delivered_branch_then_the_sdk_example(tmp_path: Path) -> None:
    """The new user's hour, as the README writes it: their agent, `make run` with it (the same
    flags), the commands pasted in order in a fresh directory, no step by hand; then the SDK."""
    agent = tmp_path / "my_agent.py"
    agent.write_text(_block_after(AGENT, "python"))
    user, home = tmp_path / "user", tmp_path / "cw"
    user.mkdir()
    home.mkdir()
    with cluster(home, providers=[f"mine=python3 {agent}"]) as c:
        env = {**c.client_env(), **PERSON, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        walked = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _block_after(WALK_THROUGH)],
            cwd=user, capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert walked.returncode == 0, walked.stdout + walked.stderr
        assert walked.stdout.rstrip().endswith("hello")  # `git show cw/greeting:hello.txt`, in their repository
        assert "Greeting" in walked.stdout and "+hello" in walked.stdout  # the proposals, the diff
        sdk = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", _block_after(SDK, "python")],
            cwd=user, capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert sdk.returncode == 0, sdk.stderr
        assert sdk.stdout.strip() == "['hello.txt']"
        delivered = c.api.initiatives.ListInitiatives(initiative_pb2.ListInitiativesRequest()).initiatives
        statuses = {i.name: i.status for i in delivered}
        assert statuses == {
            "Greeting": initiative_pb2.INITIATIVE_STATUS_COMPLETED,
            "Hello again": initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW,  # merged: only delivery is left
        }
