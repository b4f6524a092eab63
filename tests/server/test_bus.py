"""Revoke signals on the Redis bus: what a node does with them, and with forged ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from websockets.exceptions import ConnectionClosed

from securechat.server.app import RelayServer
from tests.conftest import fast_config
from tests.services import REDIS_URL, redis_prefix
from tests.wire import Wire, signed_up


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async for value in redis_prefix():
        yield value


@pytest.fixture
async def node(tmp_path: Path, prefix: str) -> AsyncIterator[RelayServer]:
    server = RelayServer(fast_config(tmp_path / "node", bus=REDIS_URL, bus_prefix=prefix))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def publish(prefix: str, message: dict[str, object] | str) -> None:
    """What another node (or anyone who can reach Redis) puts on the channel."""
    client = redis.from_url(REDIS_URL)
    try:
        data = message if isinstance(message, str) else json.dumps(message)
        await client.publish(f"{prefix}:events", data)
    finally:
        await client.aclose()


async def still_open(wire: Wire) -> bool:
    with contextlib.suppress(ConnectionClosed):
        return (await wire.call("watch", users=[]))["type"] == "presence_list"
    return False


async def test_revoke_from_another_node_closes_the_users_connections(
    node: RelayServer, prefix: str
) -> None:
    url = f"ws://127.0.0.1:{node.port}"
    alice, bob = await signed_up(url, "alice"), await signed_up(url, "bob")
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "password_changed"})
    assert await alice.closed_because() == "password changed; log in again"
    assert await still_open(bob)


async def test_malformed_or_unknown_revoke_signals_are_ignored(
    node: RelayServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad message on the channel closes nothing and does not stop the listener."""
    url = f"ws://127.0.0.1:{node.port}"
    alice = await signed_up(url, "alice")
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "because I say so"})
    await publish(prefix, {"kind": "revoke", "user": "alice"})
    await publish(prefix, "not json")
    await publish(prefix, {"kind": "revoke", "user": "bob", "cause": "account_deleted"})
    await asyncio.sleep(0.5)
    assert await still_open(alice)
    messages = [r.getMessage() for r in caplog.records]
    assert "ignored a revoke signal with an unknown cause" in messages
    assert messages.count("ignored a malformed bus message") == 2
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "account_deleted"})
    assert await alice.closed_because() == "account deleted"
