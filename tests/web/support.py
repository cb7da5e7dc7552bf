"""The web server as its own process beside a cluster, a headless Chromium (Debian's, launched by
Playwright through its path), and the pages' screenshots."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clients.local import Service, start, stop
from tests.e2e.cluster import Cluster, wait_for

LOGIN_LINE = re.compile(r"open: (\S+)")


def chromium_path() -> str:
    """Debian's chromium (`make install-browser` installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium on PATH: `make install-browser` (apt-get install chromium) installs it"
    return found


@dataclass
class WebServer:
    service: Service
    log: Path

    @property
    def base(self) -> str:
        return f"http://{self.service.address}"

    def printed_login_url(self) -> str:
        """The login link the server printed at start."""
        found = wait_for("the login link in the log", lambda: LOGIN_LINE.search(self.log.read_text()), 30)
        return found.group(1)


@contextmanager
def web_server(c: Cluster) -> Iterator[WebServer]:
    """`python -m clients.web` on port 0, as a person of the cluster runs it (their CW_HOME, addresses)."""
    log = c.root / "web.log"
    env = {**c.client_env(), "CW_WEB": "127.0.0.1:0"}
    service = start("clients.web", [], log, env=env)
    try:
        yield WebServer(service, log)
    finally:
        stop(service)
