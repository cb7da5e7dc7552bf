"""`make demo`: a scripted walkthrough of cw with the `cw` CLI, on a fresh temporary $CW_HOME.

A throw-away git repository, an initiative with two dependent phases of several tasks, agents
that edit and commit (a scripted stand-in for Claude Code), one agent crash that is retried, the
live event stream, the phase diffs and their merges. Exits 0 when everything came out as expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from clients.local import Service, start_both, stop

SCRIPTED_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "agents" / "scripted.py"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


class DemoFailed(Exception):
    pass


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def cw(*args: str, capture_json: bool = False) -> Any:
    """Runs the CLI as a user would, showing the command and what it printed."""
    shown = ["--json", *args] if capture_json else list(args)
    print(f"{BOLD}$ cw {' '.join(shown)}{RESET}", flush=True)
    command = [sys.executable, "-m", "clients.cli.main", *shown]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoFailed(f"cw {' '.join(args)} failed: {result.stderr.strip()}")
    if not capture_json:
        print(result.stdout, end="", flush=True)
        return None
    value = json.loads(result.stdout)
    print(f"{DIM}{json.dumps(value)[:160]}{RESET}", flush=True)
    return value


def task_script(**plan: Any) -> str:
    return f"Demo task.\nscript: {json.dumps(plan)}"


def make_repository(path: Path) -> None:
    git = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "README.md").write_text("# greeter\n")
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial commit"], cwd=path, check=True)


def follow_events(stop_event: threading.Event) -> subprocess.Popen[str]:
    """`cw events --follow` in the background, its lines shown as they arrive."""
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clients.cli.main",
            "events",
            "--follow",
            "--type",
            "task:dispatched",
            "--type",
            "task:completed",
            "--type",
            "task:retried",
            "--type",
            "agent:crashed",
            "--type",
            "phase:started",
            "--type",
            "phase:pending_review",
            "--type",
            "phase:completed",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def pump() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            if not stop_event.is_set():
                print(f"{DIM}[event]{RESET} {line.rstrip()}", flush=True)

    threading.Thread(target=pump, daemon=True).start()
    return follower


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)
    print(f"ok: {what}", flush=True)


def walkthrough(home: Path) -> None:
    say("A throw-away git repository")
    repository = home / "greeter"
    make_repository(repository)
    cw("project", "add", "greeter", str(repository))

    say("An initiative with two phases; the second waits for the first")
    initiative = cw("initiative", "create", "Greeting service", "--project", "greeter", capture_json=True)
    first = cw("phase", "add", initiative["id"], "Foundations", capture_json=True)
    second = cw("phase", "add", initiative["id"], "Features", "--after", first["id"], capture_json=True)
    config = cw(
        "task",
        "add",
        first["id"],
        "Add config",
        "--priority",
        "high",
        "--description",
        task_script(files={"config.toml": "greeting = 'hello'\n"}, summary="config.toml holds the greeting"),
        capture_json=True,
    )
    module = cw(
        "task",
        "add",
        first["id"],
        "Add greeter module",
        "--after",
        config["id"],
        "--description",
        task_script(
            files={"greeter.py": "def greet(name):\n    return f'hello {name}'\n"},
            crash_times=1,
            summary="greeter.greet() says hello",
        ),
        capture_json=True,
    )
    cw(
        "task",
        "add",
        second["id"],
        "Add command line",
        "--description",
        task_script(files={"cli.py": "import greeter\nprint(greeter.greet('world'))\n"}),
        capture_json=True,
    )
    cw(
        "task",
        "add",
        second["id"],
        "Add tests",
        "--description",
        task_script(files={"test_greeter.py": "def test_greet():\n    assert True\n"}),
        capture_json=True,
    )
    cw("initiative", "show", initiative["id"])

    say("Approve both phases; agents start, the event stream shows what happens")
    cw("phase", "approve", first["id"])
    cw("phase", "approve", second["id"])
    cw("watch", initiative["id"])

    say("The first phase awaits review: its diff, then the merge")
    cw("phase", "diff", first["id"], "--stat")
    cw("phase", "diff", first["id"])
    first_diff = cw("phase", "diff", first["id"], capture_json=True)
    files = {f["path"] for project in first_diff["projects"] for f in project.get("files", [])}
    expect(files == {"config.toml", "greeter.py"}, "the first phase's diff holds exactly its tasks' files")
    cw("phase", "merge", first["id"])

    say("The second phase starts once the first is merged")
    cw("watch", initiative["id"])
    cw("phase", "diff", second["id"], "--stat")
    cw("phase", "merge", second["id"])
    cw("watch", initiative["id"])
    cw("initiative", "show", initiative["id"])

    say("Checks")
    tasks = cw("task", "list", capture_json=True)
    expect(all(t["status"] == "TASK_STATUS_COMPLETED" for t in tasks), "every task completed")
    retried = next(t for t in tasks if t["id"] == module["id"])
    expect(retried.get("retryCount") == 1, "the crashed agent's task was retried once, then completed")
    events = cw("events", "--type", "agent:crashed", "--type", "task:retried", capture_json=True)
    expect({e["type"] for e in events} == {"agent:crashed", "task:retried"}, "the crash and the retry are in the log")
    shown = cw("initiative", "show", initiative["id"], capture_json=True)
    expect(shown["initiative"]["status"] == "INITIATIVE_STATUS_PENDING_REVIEW", "the initiative awaits its review")


def main() -> int:
    home = Path(os.environ.get("CW_DEMO_HOME") or tempfile.mkdtemp(prefix="cw-demo-"))
    os.environ["CW_HOME"] = str(home)
    # The CLI reads the token the demo's own store creates in $CW_HOME/auth, whatever else is set.
    for variable in ("CW_TOKEN_FILE", "CW_TLS_CA"):
        os.environ.pop(variable, None)
    os.environ["CW_TEST_STATE_DIR"] = str(home)  # where the scripted agent counts its attempts
    provider = f"scripted={sys.executable} {SCRIPTED_AGENT}"
    say(f"Starting the store and the orchestrator on {home}")
    services: tuple[Service, Service] = start_both(
        home,
        ["--provider", provider, "--default-provider", "scripted", "--max-agents", "4"],
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    os.environ["CW_STORE"], os.environ["CW_ORCHESTRATOR"] = services[0].address, services[1].address
    stopping = threading.Event()
    follower = follow_events(stopping)
    try:
        walkthrough(home)
    except DemoFailed as failure:
        print(f"\ndemo FAILED: {failure}\n(logs in {home})", file=sys.stderr, flush=True)
        return 1
    finally:
        stopping.set()
        follower.terminate()
        follower.wait(10)
        for service in reversed(services):
            stop(service)
    print(f"\n{BOLD}demo passed{RESET} (state and logs in {home})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
