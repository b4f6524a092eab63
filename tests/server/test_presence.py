"""Presence between users who follow each other, from the relay's side: what starts a
waiting watch and what may not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.server.metrics import Metrics
from securechat.server.relay import Relay
from securechat.server.store import Account, StoredEnvelope
from securechat.server.store.sqlite import SQLiteStore


class Watcher:
    """A connection seen through the relay's `Outlet`: it keeps the presence pushed to it."""

    token: str | None = None

    def __init__(self, username: str) -> None:
        self.username: str | None = username
        self.pushed: list[tuple[str, str]] = []

    def push(self, frame: str | bytes) -> None:
        presence = json.loads(frame)
        assert presence["type"] == "presence", presence
        self.pushed.append((presence["user"], presence["state"]))

    def wake_delivery(self, envelope: StoredEnvelope | None) -> None: ...
    def wake_backlog(self) -> None: ...
    def flush(self) -> None: ...
    def end_session(self, reason: str) -> None: ...


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "relay.db")
    for name in ("alice", "bob"):
        await store.create_account(Account(name, b"hash", b"recovery", 1.0))
    yield store
    await store.close()


async def settled(relay: Relay) -> None:
    for task in list(relay._signals):
        await task


async def test_a_watch_signal_from_another_node_starts_only_a_follow_the_store_holds(
    store: SQLiteStore,
) -> None:
    """Anyone who reaches Redis could publish "bob follows alice": alice's waiting watch
    starts only once the store says so."""
    relay = Relay(store, Metrics())
    alice = Watcher("alice")
    relay.connected(alice)
    assert await relay.watch(alice, ["bob"]) == {"bob": "unknown"}
    relay.remote_watch("bob", ["alice"])
    await settled(relay)
    assert alice.pushed == []
    assert await store.record_watches("bob", ["alice"]) == ["alice"]  # on the other node
    relay.remote_watch("bob", ["alice"])
    await settled(relay)
    assert alice.pushed == [("bob", "offline")]
    assert relay.waiting_watches == {}


async def test_a_deleted_account_leaves_no_watch_waiting_for_its_name(
    store: SQLiteStore,
) -> None:
    """Whoever registers a deleted name next is somebody else: alice's watch that waited
    for the old bob to follow her back must not start when the new one does."""
    relay = Relay(store, Metrics())
    alice = Watcher("alice")
    relay.connected(alice)
    assert await relay.watch(alice, ["bob"]) == {"bob": "unknown"}
    await store.delete_account("bob")
    relay.account_deleted("bob", set())
    assert relay.waiting_watches == {}
    await store.create_account(Account("bob", b"hash", b"recovery", 2.0))
    bob = Watcher("bob")
    relay.connected(bob)
    assert await relay.watch(bob, ["alice"]) == {"alice": "unknown"}
    await settled(relay)
    assert alice.pushed == []
