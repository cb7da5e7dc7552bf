"""`python -m clients.local`: the store and the orchestrator in the foreground, on $CW_HOME.

What `make run` starts. Ctrl-C (or SIGTERM) stops both cleanly: the orchestrator first, then the
store. Extra arguments go to the orchestrator (`--provider NAME=COMMAND`, `--max-agents N`, ...).
They listen where the clients look for them: $CW_STORE and $CW_ORCHESTRATOR, else the defaults.
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

LISTENING = re.compile(r"listening on ([\d.]+:\d+)")
START_TIMEOUT_SECONDS = 60.0


@dataclass
class Service:
    process: subprocess.Popen[str]
    address: str

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
            return Service(process, found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited:\n{text}")
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


def main(argv: list[str]) -> int:
    home = Path(os.environ.get("CW_HOME", ".cw")).resolve()
    store_listen = os.environ.get("CW_STORE", "127.0.0.1:50051")
    orchestrator_listen = os.environ.get("CW_ORCHESTRATOR", "127.0.0.1:50052")
    store, orchestrator = start_both(home, argv, store_listen, orchestrator_listen)
    print(f"cw is running (logs in {home}); Ctrl-C stops it", flush=True)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping and store.process.poll() is None and orchestrator.process.poll() is None:
        time.sleep(0.2)
    stop(orchestrator)
    stop(store)
    print("cw stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
