"""The token files under the auth directory, and the identities they stand for.

The store creates them on first start (see store_service/auth_files.py); the orchestrator and every
client only read them.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

CLIENT_TOKEN = "client.token"
ORCHESTRATOR_TOKEN = "orchestrator.token"
# Environment variables that point a client at its credentials (CW_HOME holds auth/): never handed
# to an agent process.
AUTH_ENVIRONMENT = ("CW_TOKEN_FILE", "CW_HOME")


class Identity(enum.StrEnum):
    CLIENT = "client"
    ORCHESTRATOR = "orchestrator"


TOKEN_FILES = {Identity.CLIENT: CLIENT_TOKEN, Identity.ORCHESTRATOR: ORCHESTRATOR_TOKEN}


def cw_home() -> Path:
    return Path(os.environ.get("CW_HOME", ".cw"))


def default_auth_dir() -> Path:
    return cw_home() / "auth"


def read_token(path: Path) -> str:
    """The token in a file, without the newline that ends it."""
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"{path} is empty")
    return token
