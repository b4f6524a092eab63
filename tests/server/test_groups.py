"""The relay as MLS's delivery service, over the wire, on SQLite and PostgreSQL: groups
created by a Commit, one Commit per epoch, one body per send fanned out in order,
members only, and hostile input answered while the relay keeps serving."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from securechat.server.app import RelayServer
from securechat.server.store.postgres import PostgresStore
from tests.conftest import fast_config
from tests.server.test_group_store import count
from tests.services import pg_schema
from tests.wire import Wire, b64, logged_in, signed_up

GROUP = b64(os.urandom(16))

StartRelay = Callable[..., Awaitable[RelayServer]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def start_relay(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StartRelay]:
    """Starts relays on one store (a restart is a second start), stopped afterwards."""
    started: list[RelayServer] = []
    dsn = None
    schemas = pg_schema() if request.param == "postgresql" else None
    if schemas is not None:
        dsn = await anext(schemas)

    async def start(**settings: Any) -> RelayServer:
        config = fast_config(tmp_path / "relay", **settings)
        store = await PostgresStore.connect(dsn, min_size=1, max_size=4) if dsn else None
        server = RelayServer(config, store=store)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
    if schemas is not None:
        await schemas.aclose()


def url(relay: RelayServer) -> str:
    return f"ws://127.0.0.1:{relay.port}"


async def commit(wire: Wire, epoch: int, eid: str, **changes: Any) -> dict[str, Any]:
    added = changes.get("added", [])
    fields: dict[str, Any] = {
        "group": GROUP,
        "epoch": epoch,
        "eid": eid,
        "commit": b64(b"C" + eid.encode()),
    }
    if added:
        fields["welcome"] = b64(b"W" + eid.encode())
    return await wire.call("group_commit", **fields, **changes)


async def group_send(wire: Wire, epoch: int, eid: str) -> dict[str, Any]:
    return await wire.call(
        "group_send", group=GROUP, epoch=epoch, eid=eid, body=b64(b"M" + eid.encode())
    )


async def deliveries(wire: Wire, n: int, timeout: float = 5.0) -> list[tuple[str, int, str]]:
    """(kind, epoch, eid) of the next `n` group deliveries, acknowledged."""
    got: list[tuple[str, int, str]] = []
    async with asyncio.timeout(timeout):
        while len(got) < n:
            push = await wire.next_push("group_deliver", timeout=timeout)
            got += [(e["kind"], e["epoch"], e["eid"]) for e in push["envelopes"]]
            assert all(e["group"] == GROUP for e in push["envelopes"])
            await wire.send(
                {"type": "ack", "rid": 0, "sids": [e["sid"] for e in push["envelopes"]]}
            )
    return got


async def nothing_more(wire: Wire) -> None:
    with pytest.raises(TimeoutError):
        await wire.next_push("group_deliver", timeout=0.5)


async def founded(relay: RelayServer, *members: str) -> list[Wire]:
    """alice's group at epoch 2, `members` added by the Commit of epoch 1 and welcomed."""
    wires = [await signed_up(url(relay), name) for name in ("alice", *members)]
    assert (await commit(wires[0], 0, "create"))["type"] == "group_accepted"
    accepted = await commit(wires[0], 1, "add", added=list(members))
    assert {k: accepted[k] for k in ("type", "group", "epoch", "eid")} == {
        "type": "group_accepted",
        "group": GROUP,
        "epoch": 1,
        "eid": "add",
    }
    for wire in wires[1:]:
        assert await deliveries(wire, 1) == [("welcome", 2, "add")]
    return wires


async def test_one_send_is_stored_once_and_reaches_every_other_member(
    start_relay: StartRelay,
) -> None:
    """Fan-out: one body row and a delivery row per other member; the sender gets
    `accepted`, and a re-send of the same eid is accepted without a second copy."""
    relay = await start_relay()
    alice, bob, carol, dave = await founded(relay, "bob", "carol", "dave")
    bodies = await count(relay.store, "envelopes")
    assert await group_send(alice, 2, "m1") == {"type": "accepted", "rid": alice.rid, "eid": "m1"}
    assert await count(relay.store, "envelopes") == bodies + 1
    for wire in (bob, carol, dave):
        assert await deliveries(wire, 1) == [("message", 2, "m1")]
    assert (await group_send(alice, 2, "m1"))["type"] == "accepted"
    await nothing_more(bob)
    for wire in (alice, bob, carol, dave):
        await wire.close()
