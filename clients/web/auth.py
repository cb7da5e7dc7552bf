"""Who may see the web pages: one-time login links signed with a key under $CW_HOME, sessions held
in the server's memory, and a CSRF token per session.

A login link is `nonce.expiry.signature`, the signature an HMAC-SHA256 of `nonce.expiry` with the
key in `$CW_HOME/web/login.key` (mode 0600, made on first use): only who can read that file (the
user who holds the client token) can mint one, and the server learns of a link by checking its
signature, with no shared state but the key. A link works once (the server remembers the nonces
it took until they expire) and only until its expiry; a link minted before the server started is
refused, so a restart forgets no nonce that could still be replayed. The decisions
(`check_link`, `session_of`) are pure; the clock and the random source are arguments.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cw_edge.tokens import cw_home

LINK_TTL_SECONDS = 10 * 60
SESSION_TTL_SECONDS = 12 * 60 * 60
KEY_BYTES = 32
SESSION_COOKIE = "cw_session"


class LinkRefusal(enum.StrEnum):
    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"
    USED = "used"
    BEFORE_START = "minted before this server started"


def key_path(home: Path | None = None) -> Path:
    return (home or cw_home()) / "web" / "login.key"


def load_or_make_key(path: Path) -> bytes:
    """The login key, made readable only by its owner the first time it is needed."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(KEY_BYTES))
    return bytes.fromhex(path.read_text().strip())


def _signature(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def mint_token(key: bytes, now: float, ttl: float = LINK_TTL_SECONDS) -> str:
    """A one-time login token valid for `ttl` seconds from `now`."""
    payload = f"{secrets.token_hex(16)}.{int(now + ttl)}"
    return f"{payload}.{_signature(key, payload)}"


def login_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/login?token={token}"


@dataclass(frozen=True)
class CheckedLink:
    nonce: str = ""
    expiry: float = 0.0
    refusal: LinkRefusal | None = None


def check_link(
    key: bytes,
    token: str,
    now: float,
    *,
    used: set[str] | frozenset[str],
    started: float,
    ttl: float = LINK_TTL_SECONDS,
) -> CheckedLink:
    """Whether `token` opens a session now: signed with `key`, not expired, not used, and minted
    after the server started (its expiry minus its lifetime)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return CheckedLink(refusal=LinkRefusal.MALFORMED)
    nonce, expiry_text, signature = parts
    if not hmac.compare_digest(_signature(key, f"{nonce}.{expiry_text}"), signature):
        return CheckedLink(refusal=LinkRefusal.FORGED)
    expiry = float(expiry_text)
    if expiry < now:
        return CheckedLink(refusal=LinkRefusal.EXPIRED)
    if expiry - ttl < int(started):
        return CheckedLink(refusal=LinkRefusal.BEFORE_START)
    if nonce in used:
        return CheckedLink(refusal=LinkRefusal.USED)
    return CheckedLink(nonce, expiry)


@dataclass
class WebSession:
    csrf: str
    expiry: float


@dataclass
class Gate:
    """The server's memory of used links and open sessions."""

    key: bytes
    started: float = field(default_factory=time.time)
    used_nonces: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, WebSession] = field(default_factory=dict)

    def open_session(self, token: str, now: float | None = None) -> tuple[str, WebSession] | LinkRefusal:
        """A new session for a valid login token, which is used up."""
        now = time.time() if now is None else now
        self._forget_expired(now)
        checked = check_link(self.key, token, now, used=frozenset(self.used_nonces), started=self.started)
        if checked.refusal is not None:
            return checked.refusal
        self.used_nonces[checked.nonce] = checked.expiry
        return self.new_session(now)

    def new_session(self, now: float) -> tuple[str, WebSession]:
        session_id = secrets.token_urlsafe(32)
        session = WebSession(secrets.token_urlsafe(32), now + SESSION_TTL_SECONDS)
        self.sessions[session_id] = session
        return session_id, session

    def session_of(self, cookie: str | None, now: float | None = None) -> WebSession | None:
        now = time.time() if now is None else now
        session = self.sessions.get(cookie or "")
        if session is None or session.expiry < now:
            return None
        return session

    def close(self, cookie: str | None) -> None:
        self.sessions.pop(cookie or "", None)

    def _forget_expired(self, now: float) -> None:
        for nonce in [n for n, expiry in self.used_nonces.items() if expiry < now]:
            del self.used_nonces[nonce]
        for sid in [s for s, session in self.sessions.items() if session.expiry < now]:
            del self.sessions[sid]


def csrf_matches(session: WebSession, given: str) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf, given)
