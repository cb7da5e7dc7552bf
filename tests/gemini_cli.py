"""Running the real Gemini CLI (pinned, `make agent-clis`) offline against tests/fake_gemini.py, by
hand as cw would (tests/record_gemini.py): the settings cw writes (API-key auth, no telemetry, no
update checks), the environment that points it at the fake, the flags of a headless run."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator_service.agents.clis import gemini
from orchestrator_service.agents.clis.base import RunRequest

ROOT = Path(__file__).resolve().parents[1]
GEMINI = Path(os.environ.get("CW_TEST_GEMINI") or ROOT / ".cache/agent-clis/gemini-0.61.0/node_modules/.bin/gemini")
MODEL = "gemini-2.5-pro"
# The settings cw writes for a run under an account (clis/gemini.py).
SETTINGS = gemini.settings("")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def write_settings(home: Path) -> None:
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(SETTINGS)


def run(
    home: Path, work: Path, base_url: str, prompt: str, *, key: str = "test-key", session: str, resume: bool = False
) -> Ran:
    """One headless run as cw starts it (clis/gemini.py's arguments, the prompt on standard input):
    `session` new, or resumed."""
    command = [str(GEMINI), "-m", MODEL, *gemini.Gemini().arguments(RunRequest(session, resume))]
    env = {
        "PATH": os.environ["PATH"],
        "GEMINI_CLI_HOME": str(home),
        # Its error reports go to the temporary directory: the run's own, not the machine's /tmp.
        "TMPDIR": str(home),
        "GEMINI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": base_url,
    }
    done = subprocess.run(
        command, input=prompt, cwd=work, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    return Ran(done.returncode, done.stdout, done.stderr)
