"""The store's port is its own: no other gRPC server can share it, SO_REUSEPORT or not."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from cw_edge.listen import Listening, ListenRefused, bind
from tests.support import RunningStore


def test_a_default_grpc_server_cannot_share_the_store_port(store: RunningStore) -> None:
    """gRPC Python sets SO_REUSEPORT unless told not to; two sockets share a port only if both set it."""

    async def intrude() -> None:
        intruder = grpc.aio.server()  # the default options: SO_REUSEPORT on
        with pytest.raises(ListenRefused, match=f"cannot listen on {store.address}: address already in use"):
            bind(intruder, Listening(store.address), logging.getLogger("test"))

    asyncio.run(intrude())
