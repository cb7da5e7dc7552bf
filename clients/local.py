"""`python -m clients.local`: the store, the orchestrator and the web server in the foreground, on
$CW_HOME.

What `make run` starts. Ctrl-C (or SIGTERM) stops them cleanly: the web server, the orchestrator,
then the store. Extra arguments go to the orchestrator (`--provider NAME=COMMAND`, `--max-agents N`,
...). They listen where the clients look for them: $CW_STORE, $CW_ORCHESTRATOR and $CW_WEB, else the
defaults; it prints a one-time login link for the web pages (`cw web url` makes another).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from clients.sdk.channel import DEFAULT_ORCHESTRATOR, DEFAULT_STORE
from clients.web.links import DEFAULT_WEB, new_login_url

LISTENING = re.compile(r"listening on ([\d.]+:\d+)")
START_TIMEOUT_SECONDS = 60.0


class StartFailed(RuntimeError):
    """A service exited before it listened: its message is the last line it wrote, which says why
    (a refusal, a usage error, the exception), and the person is shown that line, not a traceback."""

    def __init__(self, module: str, output: str, log_path: Path) -> None:
        lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
        self.reason = lines[-1] if lines else "it wrote nothing"
        self.log_path = log_path
        super().__init__(f"{module} did not start: {self.reason} (its log: {log_path})")


@dataclass
class Service:
    process: subprocess.Popen[str]
    address: str
    name: str = ""
    log_path: Path | None = None

    def death(self) -> str:
        """How the process ended, for people: "" while it runs."""
        code = self.process.poll()
        if code is None:
            return ""
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        return f"the {self.name} {how}; its log: {self.log_path}"

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.kill()
        self.process.wait(10)


def start(
    module: str, arguments: list[str], log_path: Path, echo: bool = False, env: dict[str, str] | None = None
) -> Service:
    """Starts `python -m module` and returns once its log says where it listens."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *arguments], stdout=log, stderr=subprocess.STDOUT, text=True, env=env
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log_path.read_text()[offset:]
        found = LISTENING.search(text)
        if found:
            if echo:
                print(text.strip().splitlines()[-1], flush=True)
            return Service(process, found.group(1), module.removesuffix("_service"), log_path)
        if process.poll() is not None:
            raise StartFailed(module, text, log_path)
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(f"{module} did not start within {START_TIMEOUT_SECONDS:.0f}s; see {log_path}")


def stop(service: Service) -> None:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(15)
        except subprocess.TimeoutExpired:
            service.process.kill()


def start_both(
    home: Path, orchestrator_arguments: list[str], store_listen: str, orchestrator_listen: str, echo: bool = True
) -> tuple[Service, Service]:
    """The store creates the token files in `home/auth` on its first start; the orchestrator and
    the clients read them from there."""
    home.mkdir(parents=True, exist_ok=True)
    auth = ["--auth-dir", str(home / "auth")]
    store_arguments = ["--db", str(home / "store.db"), "--listen", store_listen, *auth]
    store = start("store_service", store_arguments, home / "store.log", echo)
    try:
        arguments = ["--store", store.address, "--listen", orchestrator_listen, "--workspace", str(home / "workspace")]
        arguments += auth
        orchestrator = start(
            "orchestrator_service", [*arguments, *orchestrator_arguments], home / "orchestrator.log", echo
        )
    except BaseException:
        stop(store)
        raise
    return store, orchestrator


def start_web(home: Path, store: Service, orchestrator: Service, listen: str) -> Service:
    """The web server (`cw web`), a client of the two services like the CLI."""
    addresses = {"CW_STORE": store.address, "CW_ORCHESTRATOR": orchestrator.address, "CW_WEB": listen}
    web = start("clients.web", [], home / "web.log", env={**os.environ, "CW_HOME": str(home), **addresses})
    web.name = "web server"
    return web


def main(argv: list[str]) -> int:
    home = Path(os.environ.get("CW_HOME", ".cw")).resolve()
    store_listen = os.environ.get("CW_STORE", DEFAULT_STORE)
    orchestrator_listen = os.environ.get("CW_ORCHESTRATOR", DEFAULT_ORCHESTRATOR)
    print(
        f"store on {store_listen} ($CW_STORE), orchestrator on {orchestrator_listen} ($CW_ORCHESTRATOR): "
        "set them to listen elsewhere; the cw CLI reads the same variables",
        flush=True,
    )
    try:
        store, orchestrator = start_both(home, argv, store_listen, orchestrator_listen)
    except StartFailed as failure:
        print(f"cw: {failure}", file=sys.stderr, flush=True)
        return 2
    try:
        web = start_web(home, store, orchestrator, os.environ.get("CW_WEB", DEFAULT_WEB))
    except BaseException:
        stop(orchestrator)
        stop(store)
        raise
    print(f"web pages on http://{web.address} ($CW_WEB); log in: {new_login_url(web.address, home=home)}", flush=True)
    print(f"cw is running (logs in {home}); Ctrl-C stops it", flush=True)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    services = (store, orchestrator, web)
    while not stopping and all(service.process.poll() is None for service in services):
        time.sleep(0.2)
    deaths = [] if stopping else [death for death in (service.death() for service in services) if death]
    stop(web)
    stop(orchestrator)
    stop(store)
    for death in deaths:
        print(f"cw: {death}", file=sys.stderr, flush=True)
    print("cw stopped" + (" because a service died" if deaths else ""), flush=True)
    return 1 if deaths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
