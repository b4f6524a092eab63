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

from securechat.errors import StoreError
from securechat.server.app import RelayServer, open_store
from securechat.server.bus import RedisBus
from tests.conftest import fast_config
from tests.services import REDIS_URL, pg_schema, redis_prefix
from tests.wire import Wire, logged_in, signed_up


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


async def test_revoke_closes_the_connections_whose_session_is_gone(
    node: RelayServer, prefix: str
) -> None:
    """The signal is checked against the store: a forged one closes nothing live."""
    url = f"ws://127.0.0.1:{node.port}"
    alice, bob = await signed_up(url, "alice"), await signed_up(url, "bob")
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "password_changed"})
    await asyncio.sleep(0.5)
    assert await still_open(alice)
    await node.store.delete_sessions_of("alice")  # what the reset did on another node
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "password_changed"})
    assert await alice.closed_because() == "password changed; log in again"
    assert await still_open(bob)


async def test_malformed_or_unknown_revoke_signals_are_ignored(
    node: RelayServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad message on the channel closes nothing and does not stop the listener."""
    url = f"ws://127.0.0.1:{node.port}"
    alice = await signed_up(url, "alice")
    await node.store.delete_sessions_of("alice")
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


async def test_a_revoke_that_could_not_be_published_goes_out_later(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis refused the publish on the resetting node only: the revoke is not lost."""
    sender = RedisBus(REDIS_URL, prefix)
    listener = RedisBus(REDIS_URL, prefix)
    sender.HEARTBEAT = 0.1
    heard: list[tuple[str, str]] = []
    await listener.start(
        lambda u, s: None, lambda u, s: None, lambda u, c: heard.append((u, c)), lambda u, w: None
    )
    await sender.start(lambda u, s: None, lambda u, s: None, lambda u, c: None, lambda u, w: None)
    try:
        async with asyncio.timeout(5):
            while not (sender.healthy and listener.healthy):
                await asyncio.sleep(0.05)
        publish_for_real = sender.client.publish

        async def refused(*args: object) -> int:
            raise redis.ConnectionError("refused for the test")

        monkeypatch.setattr(sender.client, "publish", refused)
        await sender.revoke("alice", "password_changed")
        assert not sender.healthy
        await asyncio.sleep(0.3)
        assert heard == []
        monkeypatch.setattr(sender.client, "publish", publish_for_real)
        async with asyncio.timeout(5):
            while not heard:
                await asyncio.sleep(0.05)
        assert heard == [("alice", "password_changed")]
        assert sender.healthy and sender.recovered.is_set()
        await asyncio.sleep(0.3)
        assert heard == [("alice", "password_changed")]  # published once, not on every beat
    finally:
        await sender.close()
        await listener.close()


async def test_revoked_connections_stop_acting_for_the_user_at_once(relay: RelayServer) -> None:
    """Before the close completes, the relay already treats the connection as logged out.

    On one node (no bus) `end` never yields to the loop, so nothing else ran meanwhile.
    """
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    await relay.store.delete_sessions_of("alice")
    await relay.revocations.end("alice", "password_changed")
    assert relay.relay.connections_of("alice") == 0
    assert await alice.closed_because() == "password changed; log in again"


async def test_the_poll_loop_survives_a_failing_check(
    node: RelayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error in the check after an outage is logged; the next poll checks again."""
    url = f"ws://127.0.0.1:{node.port}"
    alice = await signed_up(url, "alice")
    await node.store.delete_sessions_of("alice")
    is_live = node.accounts.is_live
    failures = []

    async def broken_once(token: str) -> bool:
        if not failures:
            failures.append(token)
            raise RuntimeError("the store driver broke")
        return await is_live(token)

    monkeypatch.setattr(node.accounts, "is_live", broken_once)
    assert isinstance(node.bus, RedisBus)
    node.bus.recovered.set()
    async with asyncio.timeout(5):
        while not failures:
            await asyncio.sleep(0.05)
    assert "store-and-forward poll failed; will retry" in [r.getMessage() for r in caplog.records]
    assert await alice.closed_because() == "session ended; log in again"


async def test_a_revoke_the_store_cannot_check_closes_the_connections(
    node: RelayServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a live session costs its client a reconnect, a revoked one must go."""
    url = f"ws://127.0.0.1:{node.port}"
    alice = await signed_up(url, "alice")

    async def store_down(token: str) -> bool:
        raise StoreError("the database is unreachable")

    monkeypatch.setattr(node.accounts, "is_live", store_down)
    await publish(prefix, {"kind": "revoke", "user": "alice", "cause": "password_changed"})
    assert await alice.closed_because() == "password changed; log in again"


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async for value in pg_schema():
        yield value


@pytest.fixture
async def three_nodes(tmp_path: Path, dsn: str, prefix: str) -> AsyncIterator[list[RelayServer]]:
    nodes = []
    for i in range(3):
        # No polls: what arrives, arrives by the signals under test.
        config = fast_config(
            tmp_path / f"node{i}", store=dsn, bus=REDIS_URL, bus_prefix=prefix, poll_interval=60
        )
        nodes.append(RelayServer(config, await open_store(config)))
    for node in nodes:
        await node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


async def test_an_envelope_stored_by_a_node_that_died_unannounced_still_arrives(
    three_nodes: list[RelayServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node A stores alice's envelope and stalls before announcing it (as if killed).

    Alice must not have been told "accepted"; her re-send through node C announces
    the stored copy, and bob, live on node B, gets it once.
    """
    a, b, c = (f"ws://127.0.0.1:{node.port}" for node in three_nodes)
    stalled, released = asyncio.Event(), asyncio.Event()

    async def dies_before_announcing(items: object) -> None:
        stalled.set()
        await released.wait()

    monkeypatch.setattr(three_nodes[0].bus, "wake", dies_before_announcing)
    try:
        await _resend_through_another_node(a, b, c, stalled)
    finally:
        released.set()


async def _resend_through_another_node(a: str, b: str, c: str, stalled: asyncio.Event) -> None:
    alice = await signed_up(a, "alice")
    bob = await signed_up(b, "bob")
    alice.rid += 1
    await alice.send({"type": "send", "rid": alice.rid, "to": "bob", "eid": "m1", "body": "eA=="})
    async with asyncio.timeout(5):
        await stalled.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await alice.recv()
    alice = await logged_in(c, "alice")
    assert (await alice.call("send", to="bob", eid="m1", body="eA=="))["type"] == "accepted"
    deliver = await bob.next_push("deliver", timeout=5)
    assert [env["eid"] for env in deliver["envelopes"]] == ["m1"]
