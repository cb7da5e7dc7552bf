"""The README's `buf curl` examples, run as they are written against a real store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support import start_store_process

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- tested: these lines run in tests/e2e/test_readme.py -->"


def _block_after(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(marker) + len(marker) :]
    found = re.search(r"```sh\n(.*?)```", after, re.S)
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
