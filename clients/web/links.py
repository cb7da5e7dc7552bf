"""Where the web pages are and a one-time link into them: what `cw web url` and `make run` print.
Light on purpose (no web framework imported): the `cw` CLI and the launcher import it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from clients.web.auth import key_path, load_or_make_key, login_url, mint_token

DEFAULT_WEB = "127.0.0.1:50053"


def web_address(given: str | None = None) -> str:
    return given or os.environ.get("CW_WEB", DEFAULT_WEB)


def base_url(address: str, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://{address}"


def new_login_url(address: str, tls: bool = False, home: Path | None = None) -> str:
    """A one-time link signed with the login key under $CW_HOME (made on first use)."""
    key = load_or_make_key(key_path(home))
    return login_url(base_url(address, tls), mint_token(key, time.time()))
