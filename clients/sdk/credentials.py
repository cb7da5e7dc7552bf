"""What the SDK presents to cw's services: the client token on every call, and the CA that signed
their certificate when they serve TLS."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import grpc

from clients.sdk.errors import UnauthenticatedError
from cw_edge.tokens import CLIENT_TOKEN, cw_home


def token_path(explicit: Path | None = None) -> Path:
    """The argument, else $CW_TOKEN_FILE, else $CW_HOME/auth/client.token (CW_HOME default .cw)."""
    if explicit is not None:
        return explicit
    from_environment = os.environ.get("CW_TOKEN_FILE")
    return Path(from_environment) if from_environment else cw_home() / "auth" / CLIENT_TOKEN


def read_client_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        message = f"no client token in {path}: `make run` creates it when it first starts the store"
        raise UnauthenticatedError(grpc.StatusCode.UNAUTHENTICATED, message, "NO_TOKEN")
    return token


def root_certificates(explicit: Path | None = None) -> bytes | None:
    """The PEM CA to verify the services' certificate with: the argument, else $CW_TLS_CA; None
    means plaintext."""
    path = explicit or (Path(os.environ["CW_TLS_CA"]) if os.environ.get("CW_TLS_CA") else None)
    return path.read_bytes() if path else None


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready")),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds `authorization: Bearer <token>` to every call on a channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _signed(self, details: Any) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._signed(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._signed(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._signed(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._signed(details), requests)


def authenticated_channel(
    address: str, options: list[tuple[str, Any]], token_file: Path | None = None, tls_ca: Path | None = None
) -> grpc.Channel:
    """A channel that carries the client token, over TLS when a CA is known."""
    token = read_client_token(token_path(token_file))
    roots = root_certificates(tls_ca)
    if roots is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots), options=options)
    return grpc.intercept_channel(channel, BearerToken(token))
