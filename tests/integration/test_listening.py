"""The store's port is its own: no other gRPC server can share it, SO_REUSEPORT or not."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from store_service.startup import StartupRefused, bind
from tests.support import RunningStore


def test_a_default_grpc_server_cannot_share_the_store_port(store: RunningStore) -> None:
    """gRPC Python sets SO_REUSEPORT unless told not to; two sockets share a port only if both set it."""
    intruder = grpc.server(futures.ThreadPoolExecutor(1))
    try:
        with pytest.raises(StartupRefused, match=f"cannot listen on {store.address}: address already in use"):
            bind(store.address, intruder.add_insecure_port)
    finally:
        intruder.stop(None)
