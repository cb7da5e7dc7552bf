"""What the store refuses at start, each in one line: a database another live store holds, an
address something already listens on, a database URL (only SQLite files for now).

One store per database: an exclusive `flock` on `<database>.lock`, held for the life of the process.
The kernel drops it when the process ends, however it ends, so a SIGKILLed store never leaves a
stale lock behind; the file's content (the holder's pid and address) only feeds the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class StartupRefused(Exception):
    """The store cannot start; the message is one line for the person who started it."""


def database_path(value: str) -> Path:
    """`--db` takes a file path; a URL would otherwise become a file named `postgresql:`. The URL
    itself is not repeated: it may hold a password."""
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise StartupRefused(f"--db takes the path of a SQLite file; {scheme}:// URLs are not supported yet")
    return Path(value)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']}, listening on {holder['address']}"
    return "it has not said who it is yet"


@dataclass
class DatabaseLock:
    path: Path
    fd: int

    @classmethod
    def acquire(cls, db_path: Path) -> DatabaseLock:
        path = db_path.with_name(f"{db_path.name}.lock")
        # Never truncated before the lock is ours, never deleted: another store may be reading it.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StartupRefused(f"database {db_path} is held by another store ({holder})") from None
        return cls(path, fd)

    def announce(self, address: str) -> None:
        """Records who holds the lock, for the message a second store prints."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "address": address}).encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def _bind_problem(listen: str) -> str | None:
    """Why `listen` cannot be bound now, found with a plain socket (so the message can say it;
    gRPC only says that it failed), or None."""
    host, _, port = listen.rpartition(":")
    try:
        addresses = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        return f"not a usable HOST:PORT ({error})"
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(address)
            except OSError as error:
                return (error.strerror or str(error)).lower()
    return None


def check_listen(listen: str) -> None:
    """Fails early, before migrations run, when the address is taken."""
    problem = _bind_problem(listen)
    if problem is not None:
        raise StartupRefused(f"cannot listen on {listen}: {problem}")


def bind(listen: str, add_port: Callable[[str], int]) -> int:
    """Binds with `add_port` (for example `server.add_insecure_port`) and returns the port; one
    clear line when it fails. Servers are created with SO_REUSEPORT off (SERVER_OPTIONS), so a port
    another process listens on fails here instead of being shared."""
    try:
        port = add_port(listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise StartupRefused(f"cannot listen on {listen}: {_bind_problem(listen) or 'the address is not usable'}")
    return port


SERVER_OPTIONS = [("grpc.so_reuseport", 0)]
