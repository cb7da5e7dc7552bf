"""Records the Gemini CLI transcripts in tests/fixtures/transcripts/gemini_*.jsonl from the real CLI
(pinned, `make agent-clis`) against tests/fake_gemini.py: `.venv/bin/python -m tests.record_gemini`.

Each file is a run's whole output as cw keeps it (stdout, then stderr, which holds the CLI's error
reports); the run's temporary directory reads as /run in them. The resume fixture holds two runs one
after the other, as an agent's output file does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests import fake_gemini as api
from tests import gemini_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "transcripts"
SESSION = "5f0c6a53-3b1e-4d8e-9a51-0c2d7e9b4a11"


def _tool_script(work: Path) -> api.Script:
    return api.steps(
        api.Reply(
            text="I will write the file.",
            calls=(api.write(str(work / "hello.txt"), "hello\n"),),
            usage=api.Usage(1000, 20, 0),
        ),
        api.Reply(calls=(api.shell("git add hello.txt && git status --short"),), usage=api.Usage(1100, 15, 800)),
        api.Reply(text="Wrote hello.txt and staged it.", usage=api.Usage(1200, 9, 1000, 3)),
    )


SCRIPTS: dict[str, Callable[[Path], api.Script]] = {
    "success": lambda _: api.steps(api.Reply(text="All done: nothing to change.", usage=api.Usage(1234, 56, 200, 7))),
    "tool_use": _tool_script,
    "resume": lambda _: api.steps(
        api.Reply(text="Which name should the file have?", usage=api.Usage(300, 30, 100)),
        api.Reply(text="Named it answer.txt.", usage=api.Usage(500, 40, 250)),
    ),
    "rate_limit_daily": lambda _: api.steps(api.rate_limited()),
    "rate_limit_retry": lambda _: api.steps(api.rate_limited("2s", "GenerateRequestsPerMinutePerProjectPerModel")),
    "bad_key": lambda _: api.steps(api.bad_key()),
    "unauthorized": lambda _: api.steps(api.unauthorized()),
    "forbidden": lambda _: api.steps(api.forbidden()),
    "unknown_session": lambda _: api.steps(api.Reply(text="never asked")),
}


def record(name: str) -> str:
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        home, work = base / "home", base / "work"
        work.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        gemini_cli.write_settings(home)
        with api.serving(api.FakeGemini(script=SCRIPTS[name](work))) as fake:
            runs = []
            if name == "resume":
                runs.append(gemini_cli.run(home, work, fake.base_url, "write the file", session=SESSION))
                runs.append(gemini_cli.run(home, work, fake.base_url, "answer.txt", session=SESSION, resume=True))
            elif name == "unknown_session":
                runs.append(gemini_cli.run(home, work, fake.base_url, "go on", session=SESSION, resume=True))
            else:
                runs.append(gemini_cli.run(home, work, fake.base_url, "do the task", session=SESSION))
        text = "".join(ran.stdout + ran.stderr for ran in runs)
        return text.replace(directory, "/run").replace(str(gemini_cli.GEMINI.parent.parent), "/gemini")


def main(names: list[str]) -> None:
    for name in names or list(SCRIPTS):
        (FIXTURES / f"gemini_{name}.jsonl").write_text(record(name))
        print(f"gemini_{name}.jsonl")


if __name__ == "__main__":
    main(sys.argv[1:])
