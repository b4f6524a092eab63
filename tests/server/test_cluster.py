"""Several relay nodes on PostgreSQL and Redis keep the single node's guarantees."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.procs import RelayProcess
from tests.server.test_groups import commit as group_commit
from tests.server.test_groups import deliveries as group_deliveries
from tests.server.test_groups import group_send
from tests.services import REDIS_URL, pg_schema, private_redis, redis_prefix, start_redis
from tests.wire import PASSWORD, Wire, b64, logged_in, signed_up

__all__ = ["private_redis"]  # the fixture, used by name


class Cluster:
    def __init__(self, root: Path, dsn: str, bus: str, prefix: str, count: int = 3) -> None:
        env = {
            "SECURECHAT_STORE": dsn,
            "SECURECHAT_BUS": bus,
            "SECURECHAT_BUS_PREFIX": prefix,
            "SECURECHAT_BLOB_DIR": str(root / "shared-blobs"),
            "SECURECHAT_POLL_INTERVAL": "0.3",
        }
        self.nodes = [RelayProcess(root / f"node{i}", **env) for i in range(count)]

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async for value in pg_schema():
        yield value


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async for value in redis_prefix():
        yield value


@pytest.fixture
def cluster(tmp_path: Path, dsn: str, prefix: str) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, dsn, REDIS_URL, prefix).start()
    yield nodes
    nodes.stop()


async def collect(wire: Wire, count: int, timeout: float = 10.0) -> list[str]:
    """Reads deliveries until `count` envelopes arrived, acknowledging each frame."""
    eids: list[str] = []
    async with asyncio.timeout(timeout):
        while len(eids) < count:
            push = await wire.next_push("deliver", timeout=timeout)
            eids += [env["eid"] for env in push["envelopes"]]
            await wire.send(
                {"type": "ack", "rid": 0, "sids": [e["sid"] for e in push["envelopes"]]}
            )
    return eids


async def test_messages_cross_nodes_online_and_offline(cluster: Cluster) -> None:
    """A sender on one node reaches a recipient on another, now or at its next login."""
    a, b, c = (node.url for node in cluster.nodes)
    alice = await signed_up(a, "alice")
    bob = await signed_up(b, "bob")
    assert (await alice.call("send", to="bob", eid="live", body=b64(b"x")))["type"] == "accepted"
    assert await collect(bob, 1) == ["live"]
    await bob.close()
    for i in range(3):
        await alice.call("send", to="bob", eid=f"later{i}", body=b64(b"x"))
    bob = await logged_in(c, "bob")
    assert await collect(bob, 3) == ["later0", "later1", "later2"]


async def test_presence_and_rate_limits_hold_across_nodes(cluster: Cluster) -> None:
    """Presence is seen from another node once both follow each other (the second watch,
    on another node, starts the first); failed logins count cluster-wide."""
    a, b, _ = (node.url for node in cluster.nodes)
    alice = await signed_up(a, "alice")
    bob = await signed_up(b, "bob")
    assert (await alice.call("watch", users=["bob"]))["states"] == {"bob": "unknown"}
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "online"}
    assert await alice.next_push("presence") == {
        "type": "presence",
        "user": "bob",
        "state": "online",
        "rid": None,
    }
    assert (await alice.call("watch", users=["bob"]))["states"] == {"bob": "online"}
    await bob.close()
    assert (await alice.next_push("presence"))["state"] == "offline"
    codes = []
    for i in range(8):
        wire = await Wire.open(cluster.nodes[i % 3].url)
        codes.append((await wire.call("login", username="alice", password=f"guess {i}"))["code"])
        await wire.close()
    assert "rate_limited" in codes[5:]


async def test_user_on_two_nodes_gets_each_envelope_once_per_connection(cluster: Cluster) -> None:
    """Two devices (or a reconnect racing the old socket) on two nodes: no duplicates."""
    a, b, c = (node.url for node in cluster.nodes)
    alice = await signed_up(a, "alice")
    bob1 = await signed_up(b, "bob")
    bob2 = await logged_in(c, "bob")
    for i in range(20):
        await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x"))
    first, second = await asyncio.gather(_read_all(bob1, 20), _read_all(bob2, 20))
    assert sorted(first) == sorted(second) == sorted(f"m{i}" for i in range(20))


async def _read_all(wire: Wire, count: int) -> list[str]:
    """Everything delivered on one connection, including any late duplicate."""
    eids: list[str] = []
    async with asyncio.timeout(10):
        while len(eids) < count:
            push = await wire.next_push("deliver")
            eids += [env["eid"] for env in push["envelopes"]]
    await asyncio.sleep(0.5)
    while wire.pushes:
        extra = wire.pushes.pop()
        eids += [env["eid"] for env in extra.get("envelopes", [])]
    return eids


async def test_killed_node_loses_no_accepted_envelope(cluster: Cluster) -> None:
    """SIGKILL one node mid-traffic: the sender moves to another; all accepted arrive once."""
    a, b, c = (node.url for node in cluster.nodes)
    alice = await signed_up(a, "alice")
    bob = await signed_up(b, "bob")
    # Bob reads while alice sends, as a client does: a reader that stops reading
    # stops answering pings too, and the relay rightly drops it.
    receiving = asyncio.create_task(collect(bob, 100, timeout=90))
    accepted: list[str] = []
    try:
        for i in range(100):
            answer = await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x"))
            if answer["type"] == "accepted":
                accepted.append(f"m{i}")
            if i == 40:
                cluster.nodes[0].kill()
    except (ConnectionClosed, TimeoutError, OSError):
        pass
    alice = await logged_in(c, "alice")
    for i in range(len(accepted), 100):
        answer = await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x"))
        assert answer["type"] == "accepted"
    got = await receiving
    assert sorted(got) == sorted(f"m{i}" for i in range(100))
    assert set(accepted) <= set(got)


async def reset_with_recovery_code(url: str, username: str, recovery: bytes) -> None:
    wire = await Wire.open(url)
    answer = await wire.call(
        "reset_password",
        username=username,
        token=recovery.hex(),
        new_password="a new pass phrase",
        new_recovery_token=b64(os.urandom(32)),
    )
    assert answer["type"] == "done", answer
    await wire.close()


async def registered_with(url: str, username: str, recovery: bytes) -> None:
    wire = await Wire.open(url)
    answer = await wire.call(
        "register", username=username, password=PASSWORD, recovery_token=b64(recovery)
    )
    assert answer["type"] == "registered", answer
    await wire.close()


async def test_reset_and_deletion_end_sessions_on_every_node(cluster: Cluster) -> None:
    """A password reset or an account deletion on one node logs the user out on all of them."""
    a, b, c = (node.url for node in cluster.nodes)
    recovery = os.urandom(32)
    await registered_with(a, "alice", recovery)
    on_b, on_c = await logged_in(b, "alice"), await logged_in(c, "alice")
    bystander = await signed_up(c, "bob")
    await reset_with_recovery_code(a, "alice", recovery)
    assert (
        await asyncio.gather(on_b.closed_because(), on_c.closed_because())
        == ["password changed; log in again"] * 2
    )
    on_b = await logged_in(b, "alice", "a new pass phrase")
    on_c = await logged_in(c, "alice", "a new pass phrase")
    sent = await bystander.call("send", to="alice", eid="before", body=b64(b"x"))
    assert sent["type"] == "accepted", sent
    answer = await on_b.call("delete_account", password="a new pass phrase")
    assert answer["type"] == "done", answer
    assert await on_c.closed_because() == "account deleted"
    # Node c counted alice's queue before; the deletion's signal makes it look again.
    sent = await bystander.call("send", to="alice", eid="after", body=b64(b"x"))
    assert sent["code"] == "not_found"


async def test_redis_restart_degrades_to_store_and_forward(
    tmp_path: Path, dsn: str, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """Redis down: messages still flow (by polling); Redis back: signals resume, none lost."""
    url, proc = private_redis
    cluster = Cluster(tmp_path, dsn, url, "restart", count=2).start()
    try:
        a, b = (node.url for node in cluster.nodes)
        alice = await signed_up(a, "alice")
        bob = await signed_up(b, "bob")
        await alice.call("send", to="bob", eid="before", body=b64(b"x"))
        assert await collect(bob, 1) == ["before"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        proc.kill()
        proc.wait()
        for i in range(5):
            assert (await alice.call("send", to="bob", eid=f"down{i}", body=b64(b"x")))[
                "type"
            ] == "accepted"
        assert sorted(await collect(bob, 5)) == [f"down{i}" for i in range(5)]
        restarted = start_redis(shutil.which("redis-server") or "redis-server", port, tmp_path)
        try:
            await asyncio.sleep(2.5)
            for i in range(5):
                await alice.call("send", to="bob", eid=f"up{i}", body=b64(b"x"))
            assert sorted(await collect(bob, 5)) == [f"up{i}" for i in range(5)]
        finally:
            restarted.kill()
            restarted.wait()
    finally:
        cluster.stop()


async def test_reset_while_redis_is_down_ends_sessions_when_it_returns(
    tmp_path: Path, dsn: str, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """The revoke cannot cross while Redis is down; it does once Redis is back."""
    url, proc = private_redis
    cluster = Cluster(tmp_path, dsn, url, "revoke", count=2).start()
    await asyncio.sleep(1.0)  # past the nodes' check at start-up, which would hide the bug
    try:
        a, b = (node.url for node in cluster.nodes)
        recovery = os.urandom(32)
        await registered_with(a, "alice", recovery)
        on_b = await logged_in(b, "alice")
        bob_on_b = await signed_up(b, "bob")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        proc.kill()
        proc.wait()
        await reset_with_recovery_code(a, "alice", recovery)
        await asyncio.sleep(1.5)
        assert on_b.ws.close_code is None, on_b.ws.close_reason  # nothing told node b yet
        restarted = start_redis(shutil.which("redis-server") or "redis-server", port, tmp_path)
        try:
            # Node a publishes the revoke again and node b checks its connections:
            # whichever comes first closes it.
            assert await on_b.closed_because(timeout=10) in {
                "session ended; log in again",
                "password changed; log in again",
            }
            assert (await bob_on_b.call("watch", users=[]))["type"] == "presence_list"
        finally:
            restarted.kill()
            restarted.wait()
    finally:
        cluster.stop()


async def test_a_replaced_session_closes_on_the_node_that_holds_it(cluster: Cluster) -> None:
    """A login on one node with `replaces` ends the device's old connection on another."""
    a, b, _ = (node.url for node in cluster.nodes)
    await registered_with(a, "alice", os.urandom(32))
    old = await Wire.open(b)
    session = await old.call("login", username="alice", password=PASSWORD)
    other = await logged_in(b, "alice")
    new = await Wire.open(a)
    answer = await new.call("login", username="alice", password=PASSWORD, replaces=session["token"])
    assert answer["type"] == "session"
    assert await old.closed_because() == "logged in again on this device"
    assert (await other.call("watch", users=[]))["type"] == "presence_list"


async def test_racing_commits_on_two_nodes_one_wins_and_groups_fan_out_across_nodes(
    cluster: Cluster,
) -> None:
    """One PostgreSQL orders each group's Commits for every node: of two Commits for one
    epoch sent to two nodes at once, exactly one is accepted, five times over; the
    members on other nodes get every Commit and message, woken through the bus."""
    a, b, c = (node.url for node in cluster.nodes)
    alice, bob, carol = [
        await signed_up(node, name) for node, name in ((a, "alice"), (b, "bob"), (c, "carol"))
    ]
    assert (await group_commit(alice, 0, "create"))["type"] == "group_accepted"
    assert (await group_commit(alice, 1, "add", added=["bob", "carol"]))["epoch"] == 1
    for wire in (bob, carol):
        assert await group_deliveries(wire, 1) == [("welcome", 2, "add")]
    for epoch in range(2, 7):
        answers = await asyncio.gather(
            group_commit(alice, epoch, f"a{epoch}"), group_commit(bob, epoch, f"b{epoch}")
        )
        assert sorted(x["type"] for x in answers) == ["group_accepted", "group_conflict"]
        assert next(x for x in answers if x["type"] == "group_conflict")["epoch"] == epoch + 1
    assert [kind for kind, _, _ in await group_deliveries(carol, 5)] == ["commit"] * 5
    assert (await group_send(alice, 7, "hello"))["type"] == "accepted"
    assert await group_deliveries(carol, 1) == [("message", 7, "hello")]
    for wire in (alice, bob, carol):
        await wire.close()
