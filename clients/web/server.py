"""`cw web` and `python -m clients.web`: the web server on $CW_WEB (default 127.0.0.1:50053),
TLS or loopback unless --insecure, as the services listen (cw_edge/listen.py); it prints where it
listens and a login link."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn

from clients.sdk import OrchestratorClient, StoreClient
from clients.web.app import Site, create_app
from clients.web.auth import Gate, key_path, load_or_make_key
from clients.web.links import new_login_url
from clients.web.views import Clients
from cw_edge.listen import Listening, check

# Open event streams are cut after this long at shutdown, so Ctrl-C is never held up by a browser.
GRACEFUL_SHUTDOWN_SECONDS = 2


def bound_socket(address: str) -> socket.socket:
    """The listening socket, bound here so that port 0 tells its real port."""
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out as headers then body: without NODELAY (accepted sockets inherit it) Nagle holds
    # the body until the browser's delayed ACK, 40 ms on Linux (measured by bench/web_pages.py).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host.strip("[]"), int(port)))
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def serve(
    listening: Listening,
    store_address: str | None = None,
    orchestrator_address: str | None = None,
    home: Path | None = None,
) -> None:
    """Runs until interrupted. Refuses a non-loopback address without TLS or --insecure."""
    check(listening)
    store, orchestrator = StoreClient(store_address), OrchestratorClient(orchestrator_address)
    gate = Gate(load_or_make_key(key_path(home)))
    site = Site(Clients(store, orchestrator), gate)
    listener = bound_socket(listening.address)
    host, port = listener.getsockname()[:2]
    address = f"{host}:{port}"
    config = uvicorn.Config(
        create_app(site),
        log_level="warning",
        ssl_certfile=str(listening.tls_cert) if listening.tls_cert else None,
        ssl_keyfile=str(listening.tls_key) if listening.tls_key else None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
        server_header=False,
    )
    print(f"cw web listening on {address}", flush=True)
    print(f"open: {new_login_url(address, listening.tls, home)}  (`cw web url` makes another)", flush=True)
    try:
        asyncio.run(uvicorn.Server(config).serve(sockets=[listener]))
    finally:
        store.close()
        orchestrator.close()
