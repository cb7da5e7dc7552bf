"""One-time login links and sessions of the web server (clients/web/auth.py): pure decisions."""

from __future__ import annotations

import stat
from pathlib import Path

from clients.web.auth import (
    LINK_TTL_SECONDS,
    Gate,
    LinkRefusal,
    check_link,
    csrf_matches,
    key_path,
    load_or_make_key,
    mint_token,
)

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def test_a_fresh_link_opens_once() -> None:
    gate = Gate(KEY, started=NOW - 5)
    token = mint_token(KEY, NOW)
    opened = gate.open_session(token, NOW + 1)
    assert not isinstance(opened, str)
    session_id, session = opened
    assert gate.session_of(session_id, NOW + 2) is session
    assert gate.open_session(token, NOW + 3) == LinkRefusal.USED


def test_links_refused_for_what_they_are() -> None:
    token = mint_token(KEY, NOW)
    nonce, expiry, signature = token.split(".")
    seen: frozenset[str] = frozenset()
    assert check_link(KEY, "nonsense", NOW, used=seen, started=0).refusal == LinkRefusal.MALFORMED
    forged = f"{nonce}.{int(expiry) + 3600}.{signature}"  # a longer life, same signature
    assert check_link(KEY, forged, NOW, used=seen, started=0).refusal == LinkRefusal.FORGED
    other_key = mint_token(bytes(32), NOW)
    assert check_link(KEY, other_key, NOW, used=seen, started=0).refusal == LinkRefusal.FORGED
    late = NOW + LINK_TTL_SECONDS + 1
    assert check_link(KEY, token, late, used=seen, started=0).refusal == LinkRefusal.EXPIRED
    assert check_link(KEY, token, NOW, used=frozenset({nonce}), started=0).refusal == LinkRefusal.USED
    # Minted before this server started: a restarted server does not know whether it was used.
    assert check_link(KEY, token, NOW + 1, used=seen, started=NOW + 1).refusal == LinkRefusal.BEFORE_START
    assert check_link(KEY, token, NOW + 1, used=seen, started=NOW).refusal is None


def test_sessions_expire_and_close() -> None:
    gate = Gate(KEY, started=NOW)
    session_id, session = gate.new_session(NOW)
    assert gate.session_of(session_id, session.expiry - 1) is session
    assert gate.session_of(session_id, session.expiry + 1) is None
    assert gate.session_of("guessed", NOW) is None and gate.session_of(None, NOW) is None
    gate.close(session_id)
    assert gate.session_of(session_id, NOW) is None


def test_csrf_token_must_match() -> None:
    gate = Gate(KEY, started=NOW)
    _, session = gate.new_session(NOW)
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, "") and not csrf_matches(session, session.csrf + "x")


def test_the_key_is_made_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = key_path(tmp_path)
    key = load_or_make_key(path)
    assert len(key) == 32 and load_or_make_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
