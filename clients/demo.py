"""`make demo`: a scripted walkthrough of cw with the `cw` CLI, on a fresh temporary $CW_HOME.

A throw-away git repository and an initiative whose root page holds an idea; a plan agent proposes
two dependent phases, a detail agent each phase's tasks, and every proposal is accepted; agents
that edit and commit (a scripted stand-in for Claude Code) execute them, one crash is retried, the
live event stream runs alongside, and the phase diffs are reviewed and merged. Exits 0 when
everything came out as expected.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from clients.local import Service, start_both, stop

SCRIPTED_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "agents" / "scripted.py"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")
PREVIEW_WIDTH = 160
EVENT_STREAM_SECONDS = 30.0


class DemoFailed(Exception):
    pass


class EventLog:
    """`cw events --follow`, run alongside as in a second terminal. Its lines are kept and shown
    as their own block between steps, never in the middle of a command's output."""

    TYPES = (
        "proposal:created",
        "task:dispatched",
        "task:completed",
        "task:retried",
        "agent:crashed",
        "phase:started",
        "phase:pending_review",
        "phase:completed",
    )

    def __init__(self) -> None:
        self.command = ["cw", "events", "--follow", *(f"--type={name}" for name in self.TYPES)]
        self.lines: list[str] = []
        self.shown = 0
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli.main", *self.command[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.lock:
                self.lines.append(line.rstrip())

    def show_new(self) -> None:
        with self.lock:
            new, self.shown = self.lines[self.shown :], len(self.lines)
        if new:
            print(f"\n{DIM}-- meanwhile, in another terminal: $ {shlex.join(self.command)}{RESET}", flush=True)
            for line in new:
                print(f"{DIM}[event]{RESET} {line}", flush=True)

    def saw(self, event_type: str) -> bool:
        with self.lock:
            return any(event_type in line for line in self.lines)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def say(text: str, events: EventLog | None = None) -> None:
    """A new step: first what the event stream printed during the last one, then the heading."""
    if events is not None:
        events.show_new()
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def cw(*args: str, capture_json: bool = False) -> Any:
    """Runs the CLI as a user would, showing the command (quoted, ready to paste) and its output."""
    shown = ["--json", *args] if capture_json else list(args)
    print(f"{BOLD}$ {shlex.join(['cw', *shown])}{RESET}", flush=True)
    command = [sys.executable, "-m", "clients.cli.main", *shown]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoFailed(f"{shlex.join(['cw', *args])} failed: {result.stderr.strip()}")
    if not capture_json:
        print(result.stdout, end="" if result.stdout.endswith("\n") or not result.stdout else "\n", flush=True)
        return None
    value = json.loads(result.stdout)
    print(f"{DIM}{preview(value)}{RESET}", flush=True)
    return value


def preview(value: Any, width: int = PREVIEW_WIDTH) -> str:
    """JSON abridged to about `width` characters by whole fields and whole items, never cut inside
    one (`...` stands for what was left out); `id`, `name` and `status` come first."""
    if isinstance(value, dict):
        first = [key for key in ("id", "name", "status") if key in value]
        keys = first + sorted(key for key in value if key not in first)
        items = [(f"{json.dumps(key)}: ", value[key]) for key in keys]
        opening, closing, unit = "{", "}", "fields"
    elif isinstance(value, list):
        items = [("", item) for item in value]
        opening, closing, unit = "[", "]", "items"
    else:
        return json.dumps(value)
    kept: list[str] = []
    room = width - len(opening + closing) - len(", ... 99 more")
    for label, item in items:
        text = label + preview(item, room - len(label))
        if len(text) > room:
            break
        kept.append(text)
        room -= len(text) + 2
    left_out = len(items) - len(kept)
    rest = [f"... {left_out} more" if kept else f"... {left_out} {unit}"] if left_out else []
    return opening + ", ".join([*kept, *rest]) + closing


def write_plan(name: str, **plan: Any) -> None:
    """What the scripted agent will do (tests/fixtures/agents/scripted.py reads it): for a task by
    its id, for a detail run by its phase's id, for the plan run by `<initiative id>-plan`. Kept
    out of the texts, which read as a person would write them."""
    (Path(os.environ["CW_TEST_STATE_DIR"]) / f"plan-{name}.json").write_text(json.dumps(plan))


def make_repository(path: Path) -> None:
    git = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "README.md").write_text("# greeter\n")
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial commit"], cwd=path, check=True)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)
    print(f"ok: {what}", flush=True)


IDEA = """# Greeting service

Greet people by name from the command line. The greeting itself lives in a config file, so that
it can change without touching code. Tests come with it.
"""
PHASES = [
    {
        "key": "foundations",
        "target_type": "phase",
        "title": "Foundations",
        "summary": "the config and the greeter module",
        "content": "config.toml holds the greeting; greeter.greet(name) uses it.",
    },
    {
        "key": "features",
        "target_type": "phase",
        "title": "Features",
        "summary": "the command line and its tests",
        "content": "cli.py greets the world; a test covers greet().",
        "depends_on": ["foundations"],
    },
]
# Each proposed task: its title, its description, then what the scripted agent does when it runs.
TASKS: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "Foundations": [
        (
            {
                "key": "config",
                "title": "Add config",
                "content": "Add config.toml holding the greeting.",
                "priority": "high",
            },
            {"files": {"config.toml": "greeting = 'hello'\n"}, "summary": "config.toml holds the greeting"},
        ),
        (
            {
                "key": "module",
                "title": "Add greeter module",
                "content": "Add greeter.py with greet(name).",
                "depends_on": ["config"],
            },
            {
                "files": {"greeter.py": "def greet(name):\n    return f'hello {name}'\n"},
                "crash_times": 1,
                "summary": "greeter.greet() says hello",
            },
        ),
    ],
    "Features": [
        (
            {"key": "cli", "title": "Add command line", "content": "Add cli.py that greets the world."},
            {"files": {"cli.py": "import greeter\nprint(greeter.greet('world'))\n"}},
        ),
        (
            {"key": "tests", "title": "Add tests", "content": "Add a test for greet()."},
            {"files": {"test_greeter.py": "def test_greet():\n    assert True\n"}},
        ),
    ],
}


def plan_and_detail(home: Path, initiative: dict[str, Any], events: EventLog) -> dict[str, Any]:
    """The idea on the root page, a plan agent's phases, a detail agent's tasks for each: every
    proposal accepted. The phases by name."""
    say("The idea goes on the initiative's root page", events)
    (root,) = cw("page", "tree", initiative["id"], capture_json=True)
    (home / "idea.md").write_text(IDEA)
    cw("page", "edit", root["id"], "--file", str(home / "idea.md"))
    cw("page", "show", root["id"])

    say("A plan agent reads the pages and proposes phases", events)
    write_plan(f"{initiative['id']}-plan", summary="two phases: foundations first, then features", proposals=PHASES)
    cw("plan", initiative["id"])
    cw("proposals", "accept", "--initiative", initiative["id"])
    phases = {p["name"]: p for p in cw("initiative", "show", initiative["id"], capture_json=True)["phases"]}
    expect(set(phases) == {"Foundations", "Features"}, "the accepted plan made both phases")

    say("A detail agent proposes each phase's tasks", events)
    for name, tasks in TASKS.items():
        proposals = [{"target_type": "task", **proposal} for proposal, _ in tasks]
        write_plan(phases[name]["id"], summary=f"{len(tasks)} tasks", proposals=proposals)
        cw("phase", "detail", phases[name]["id"])
    cw("proposals", "accept", "--initiative", initiative["id"])
    for name, tasks in TASKS.items():
        made = {t["name"]: t["id"] for t in cw("task", "list", "--phase", phases[name]["id"], capture_json=True)}
        for proposal, behaviour in tasks:
            write_plan(made[proposal["title"]], **behaviour)
    return phases


def walkthrough(home: Path, events: EventLog) -> None:
    say("A throw-away git repository", events)
    repository = home / "greeter"
    make_repository(repository)
    cw("project", "add", "greeter", str(repository))
    initiative = cw("initiative", "create", "Greeting service", "--project", "greeter", capture_json=True)
    phases = plan_and_detail(home, initiative, events)
    first, second = phases["Foundations"], phases["Features"]
    module = next(t for t in cw("task", "list", capture_json=True) if t["name"] == "Add greeter module")
    cw("initiative", "show", initiative["id"])

    say("Approve both phases; agents start (the first crashes once and is retried)", events)
    cw("phase", "approve", first["id"])
    cw("phase", "approve", second["id"])
    cw("watch", initiative["id"])

    say("The first phase awaits review: its diff, then the merge", events)
    cw("phase", "diff", first["id"], "--stat")
    cw("phase", "diff", first["id"])
    first_diff = cw("phase", "diff", first["id"], capture_json=True)
    files = {f["path"] for project in first_diff["projects"] for f in project.get("files", [])}
    expect(files == {"config.toml", "greeter.py"}, "the first phase's diff holds exactly its tasks' files")
    cw("phase", "merge", first["id"])

    say("The second phase starts once the first is merged", events)
    cw("watch", initiative["id"])
    cw("phase", "diff", second["id"], "--stat")
    cw("phase", "merge", second["id"])
    cw("watch", initiative["id"])
    cw("initiative", "show", initiative["id"])
    cw("task", "show", module["id"])

    say("Checks", events)
    tasks = [t for t in cw("task", "list", capture_json=True) if t.get("phaseId")]
    expect(len(tasks) == 4 and all(t["status"] == "TASK_STATUS_COMPLETED" for t in tasks), "every task completed")
    retried = next(t for t in tasks if t["id"] == module["id"])
    expect(retried.get("retryCount") == 1, "the crashed agent's task was retried once, then completed")
    crashes = cw("events", "--type", "agent:crashed", "--type", "task:retried", capture_json=True)
    expect({e["type"] for e in crashes} == {"agent:crashed", "task:retried"}, "the crash and the retry are in the log")
    shown = cw("initiative", "show", initiative["id"], capture_json=True)
    expect(shown["initiative"]["status"] == "INITIATIVE_STATUS_PENDING_REVIEW", "the initiative awaits its review")
    deadline = time.monotonic() + EVENT_STREAM_SECONDS
    while not events.saw("task:retried") and time.monotonic() < deadline:
        time.sleep(0.1)
    events.show_new()
    expect(events.saw("task:retried"), "the live event stream showed the retry")


def agent_paths(state: Path) -> list[str]:
    """What the scripted agents need inside their sandbox: this checkout (their script and its
    virtualenv) and the Python it was made from, read-only, and their state directory, writable."""
    checkout = Path(__file__).resolve().parents[1]
    paths = [str(checkout), sys.base_prefix, f"{state}:rw"]
    return [argument for path in paths if not path.startswith("/usr/") for argument in ("--agent-path", path)]


def main() -> int:
    home = Path(os.environ.get("CW_DEMO_HOME") or tempfile.mkdtemp(prefix="cw-demo-"))
    os.environ["CW_HOME"] = str(home)
    # The CLI reads the token the demo's own store creates in $CW_HOME/auth, whatever else is set.
    for variable in ("CW_TOKEN_FILE", "CW_TLS_CA"):
        os.environ.pop(variable, None)
    state = home / "agent-state"  # where the scripted agent counts its attempts: never cw's home itself
    state.mkdir(parents=True, exist_ok=True)
    os.environ["CW_TEST_STATE_DIR"] = str(state)
    provider = f"scripted={sys.executable} {SCRIPTED_AGENT}"
    say(f"Starting the store and the orchestrator on {home}")
    services: tuple[Service, Service] = start_both(
        home,
        ["--provider", provider, "--default-provider", "scripted", "--max-agents", "4", *agent_paths(state)],
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    os.environ["CW_STORE"], os.environ["CW_ORCHESTRATOR"] = services[0].address, services[1].address
    events = EventLog()
    try:
        walkthrough(home, events)
    except DemoFailed as failure:
        print(f"\ndemo FAILED: {failure}\n(logs in {home})", file=sys.stderr, flush=True)
        return 1
    finally:
        events.stop()
        for service in reversed(services):
            stop(service)
    print(f"\n{BOLD}demo passed{RESET} (state and logs in {home})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
