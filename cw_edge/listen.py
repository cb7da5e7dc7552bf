"""Where and how a service listens: TLS when asked, and never plaintext beyond loopback unless the
operator says `--insecure`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc

from cw_edge.tokens import default_auth_dir

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
# gRPC servers in Python share a bound port by default (SO_REUSEPORT): a second server on a port
# already in use must fail instead. Every cw server is created with these options.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


class ListenRefused(ValueError):
    """A listen address and TLS settings that do not go together; the message is one line."""


@dataclass(frozen=True)
class Listening:
    address: str
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(listening: Listening) -> None:
    if (listening.tls_cert is None) != (listening.tls_key is None):
        raise ListenRefused("--tls-cert and --tls-key go together")
    if not listening.tls and not listening.insecure and not is_loopback(listening.address):
        raise ListenRefused(
            f"refusing to listen on {listening.address} without TLS: "
            "give --tls-cert and --tls-key, or --insecure to accept plaintext"
        )


def bind_problem(address: str) -> str | None:
    """Why `address` cannot be bound now, found with a plain socket (gRPC only says that it
    failed), or None."""
    host, _, port = address.rpartition(":")
    try:
        found = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        return f"not a usable HOST:PORT ({error})"
    for family, kind, protocol, _, where in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(where)
            except OSError as error:
                return (error.strerror or str(error)).lower()
    return None


def check_free(listening: Listening) -> None:
    """Fails early (before a service does any work) when the address is taken or not allowed."""
    check(listening)
    problem = bind_problem(listening.address)
    if problem is not None:
        raise ListenRefused(f"cannot listen on {listening.address}: {problem}")


def bind(server: grpc.aio.Server, listening: Listening, log: logging.Logger) -> int:
    """Adds the listening port (TLS or plaintext) and returns its number; ListenRefused with one
    clear line when it cannot (the server must have SERVER_OPTIONS, so a used port fails here)."""
    check(listening)
    try:
        if listening.tls_cert is not None and listening.tls_key is not None:
            pair = (listening.tls_key.read_bytes(), listening.tls_cert.read_bytes())
            port: int = server.add_secure_port(listening.address, grpc.ssl_server_credentials([pair]))
        else:
            port = server.add_insecure_port(listening.address)
    except RuntimeError:
        port = 0
    if port == 0:
        problem = bind_problem(listening.address) or "the address is not usable"
        raise ListenRefused(f"cannot listen on {listening.address}: {problem}")
    if not listening.tls and not is_loopback(listening.address):
        log.warning(
            "--insecure: serving plaintext on %s; tokens and data cross the network unencrypted", listening.address
        )
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags both services take for their edge."""
    parser.add_argument(
        "--auth-dir", type=Path, default=None, help="token files (default $CW_HOME/auth; the store creates them)"
    )
    parser.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--insecure", action="store_true", help="allow plaintext on a non-loopback --listen address (warns)"
    )


def from_arguments(args: argparse.Namespace, prog: str) -> Listening:
    """The Listening the flags ask for; exits with one line when they do not go together."""
    if args.auth_dir is None:
        args.auth_dir = default_auth_dir()
    listening = Listening(args.listen, args.tls_cert, args.tls_key, args.insecure)
    try:
        check(listening)
    except ListenRefused as refused:
        raise SystemExit(f"{prog}: {refused}") from None
    return listening
