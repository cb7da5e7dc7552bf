"""Running the real Gemini CLI (pinned, `make agent-clis`) offline against tests/fake_gemini.py: the
settings file that selects API-key auth and turns off telemetry and update checks, the environment
that points it at the fake, the flags of a headless run."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEMINI = Path(os.environ.get("CW_TEST_GEMINI") or ROOT / ".cache/agent-clis/gemini-0.61.0/node_modules/.bin/gemini")
MODEL = "gemini-2.5-pro"
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": 2},
    "advanced": {"ignoreLocalEnv": True},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def write_settings(home: Path) -> None:
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))


def run(
    home: Path, work: Path, base_url: str, prompt: str, *, key: str = "test-key", session: str = "", resume: str = ""
) -> Ran:
    """One headless run (`--session-id` names a new session, `--resume` continues one)."""
    command = [str(GEMINI), "-p", prompt, "-o", "stream-json", "-m", MODEL, "--approval-mode", "yolo", "--skip-trust"]
    command += ["--session-id", session] if session else []
    command += ["--resume", resume] if resume else []
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GEMINI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": base_url,
    }
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)
