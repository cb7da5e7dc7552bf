"""The README's `buf curl` examples, run as they are written against a real store."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support import start_store_process

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- tested: these lines run in tests/e2e/test_readme.py -->"


def _tested_block() -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(MARKER) + len(MARKER) :]
    found = re.search(r"```sh\n(.*?)```", after, re.S)
    assert found is not None
    return found.group(1)


def test_buf_curl_examples_work_as_shown(tmp_path: Path) -> None:
    block = _tested_block()
    assert block.count("buf curl") == 4
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log")
    try:
        env = {
            **os.environ,
            "CW_STORE": store.address,
            "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], capture_output=True, text=True, env=env, timeout=120, check=False
        )
    finally:
        store.kill()
    assert result.returncode == 0, result.stderr
    assert "cw.store.v1.InitiativeService" in result.stdout
    assert '"name": "User auth"' in result.stdout and '"branch": "cw/user-auth"' in result.stdout
    assert '"type": "initiative:created"' in result.stdout
