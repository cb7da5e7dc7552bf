"""The auth directory the store creates on first start and keeps across restarts: one token per
identity and the key that encrypts account secrets at rest.

Directory 0700, files 0600. Each file is written whole under a temporary name, then linked into
place, which fails if the name exists: two stores starting at once never overwrite each other's
token, and no reader ever sees a half-written file. Modes of existing files are put right on start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from cw_edge.tokens import TOKEN_FILES, Identity, read_token
from store_service.db.file_modes import make_private

SECRETS_KEY = "secrets.key"
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class AuthFiles:
    directory: Path
    tokens: dict[Identity, str]
    secrets_key: bytes


def create_private_file(path: Path, content: bytes) -> bool:
    """Writes `content` to `path` (mode 0600) unless it exists; True if this call created it."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(staging, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)


def ensure_auth_files(directory: Path) -> AuthFiles:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    make_private(directory, DIRECTORY_MODE)
    for name in [*TOKEN_FILES.values(), SECRETS_KEY]:
        make_private(directory / name)
    for name in TOKEN_FILES.values():
        create_private_file(directory / name, f"{secrets.token_urlsafe(32)}\n".encode())
    create_private_file(directory / SECRETS_KEY, Fernet.generate_key() + b"\n")
    tokens = {identity: read_token(directory / name) for identity, name in TOKEN_FILES.items()}
    return AuthFiles(directory, tokens, (directory / SECRETS_KEY).read_bytes().strip())
