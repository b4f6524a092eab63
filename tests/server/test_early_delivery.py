"""Delivery before the write batch (the embedded SQLite store hands sids out itself).

An online recipient gets an envelope as soon as it arrives; the sender's
`accepted` still waits for the commit, and an envelope acknowledged before
that commit is never written. A long commit delay makes the order visible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.server.app import RelayServer
from securechat.server.store import NewEnvelope
from securechat.server.store.sqlite import SQLiteStore
from securechat.server.store.sqlite import queue as sqlite_queue
from tests.conftest import fast_config
from tests.wire import Wire, b64, logged_in, signed_up

COMMIT_DELAY = 0.3
"""Longer than the configuration allows, so that a slow test machine still acknowledges in time."""


@pytest.fixture
async def slow_commits(tmp_path: Path) -> AsyncIterator[RelayServer]:
    server = RelayServer(fast_config(tmp_path / "relay"))
    server.relay.commit_delay = COMMIT_DELAY
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def url_of(server: RelayServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def send(wire: Wire, to: str, eid: str, body: bytes = b"x") -> int:
    wire.rid += 1
    await wire.send({"type": "send", "rid": wire.rid, "to": to, "eid": eid, "body": b64(body)})
    return wire.rid


async def test_an_online_recipient_gets_the_envelope_before_the_sender_is_answered(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    started = time.monotonic()
    rid = await send(alice, "bob", "m1")
    deliver, accepted = await asyncio.gather(bob.next_push("deliver"), alice.recv())
    [envelope] = deliver["envelopes"]
    assert envelope["eid"] == "m1" and envelope["sender"] == "alice"
    assert accepted == {"type": "accepted", "rid": rid, "eid": "m1"}
    assert time.monotonic() - started >= COMMIT_DELAY


async def test_delivery_does_not_wait_for_the_commit(slow_commits: RelayServer) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    await send(alice, "bob", "m1")
    await bob.next_push("deliver")
    with pytest.raises(TimeoutError):
        await alice.recv(timeout=COMMIT_DELAY / 3)  # `accepted` is still to come
    assert (await alice.recv())["type"] == "accepted"


async def acknowledged_before_the_commit(server: RelayServer) -> tuple[Wire, Wire]:
    """Alice sends bob one envelope, which he acknowledges before it can be stored."""
    alice = await signed_up(url_of(server), "alice")
    bob = await signed_up(url_of(server), "bob")
    await send(alice, "bob", "m1")
    [envelope] = (await bob.next_push("deliver"))["envelopes"]
    await bob.send({"type": "ack", "rid": 0, "sids": [envelope["sid"]]})
    assert (await alice.recv())["type"] == "accepted"
    assert await server.store.pending("bob", 0, 10) == []
    return alice, bob


async def test_an_envelope_acknowledged_before_the_commit_is_never_written(
    slow_commits: RelayServer,
) -> None:
    _, bob = await acknowledged_before_the_commit(slow_commits)
    assert await slow_commits.store.queue_usage("bob") == (0, 0)
    # The queue limit counted it while it was in flight and gives it back.
    assert slow_commits.relay._usage["bob"].count == 0
    await bob.close()
    bob = await logged_in(url_of(slow_commits), "bob")
    with pytest.raises(TimeoutError):
        await bob.next_push("deliver", timeout=0.3)


async def test_an_envelope_not_acknowledged_in_time_is_stored_and_delivered_again(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    await send(alice, "bob", "m1")
    [early] = (await bob.next_push("deliver"))["envelopes"]
    assert (await alice.recv())["type"] == "accepted"

    [stored] = await slow_commits.store.pending("bob", 0, 10)
    assert (stored.sid, stored.eid) == (early["sid"], "m1")
    # The commit does not hand it to the connection that has it already.
    with pytest.raises(TimeoutError):
        await bob.next_push("deliver", timeout=0.3)
    await bob.close()
    bob = await logged_in(url_of(slow_commits), "bob")
    [again] = (await bob.next_push("deliver"))["envelopes"]
    assert again["sid"] == early["sid"] and again["eid"] == "m1"


async def test_a_recipient_logging_in_before_the_commit_gets_the_envelope_once(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    await (await signed_up(url_of(slow_commits), "bob")).close()
    await send(alice, "bob", "m1")
    bob = await logged_in(url_of(slow_commits), "bob")

    [envelope] = (await bob.next_push("deliver"))["envelopes"]
    assert envelope["eid"] == "m1"
    assert (await alice.recv())["type"] == "accepted"
    with pytest.raises(TimeoutError):
        await bob.next_push("deliver", timeout=0.3)


async def test_a_resend_of_a_queued_envelope_is_not_delivered_again(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    await send(alice, "bob", "m1")
    await send(alice, "bob", "m1")  # in the same batch
    answers = [await alice.recv() for _ in range(2)]
    assert [a["type"] for a in answers] == ["accepted", "accepted"]
    await send(alice, "bob", "m1")  # after the first copy was stored
    assert (await alice.recv())["type"] == "accepted"

    [envelope] = (await bob.next_push("deliver"))["envelopes"]
    assert envelope["eid"] == "m1"
    with pytest.raises(TimeoutError):
        await bob.next_push("deliver", timeout=0.3)
    assert [e.eid for e in await slow_commits.store.pending("bob", 0, 10)] == ["m1"]


async def test_sids_keep_rising_across_commits_whether_written_or_not(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    sids: list[int] = []
    for i in range(4):
        await send(alice, "bob", f"m{i}")
        [envelope] = (await bob.next_push("deliver"))["envelopes"]
        sids.append(envelope["sid"])
        if i % 2 == 0:
            await bob.send({"type": "ack", "rid": 0, "sids": [envelope["sid"]]})
        assert (await alice.recv())["type"] == "accepted"
    assert sids == sorted(set(sids))
    assert [e.sid for e in await slow_commits.store.pending("bob", 0, 10)] == [sids[1], sids[3]]


async def test_an_acknowledgement_from_someone_else_does_not_cancel_the_write(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    bob = await signed_up(url_of(slow_commits), "bob")
    mallory = await signed_up(url_of(slow_commits), "mallory")
    await send(alice, "bob", "m1")
    [envelope] = (await bob.next_push("deliver"))["envelopes"]
    await mallory.send({"type": "ack", "rid": 0, "sids": [envelope["sid"]]})
    assert (await alice.recv())["type"] == "accepted"
    assert [e.eid for e in await slow_commits.store.pending("bob", 0, 10)] == ["m1"]


async def test_sids_resume_above_the_stored_ones_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    store = SQLiteStore(path)
    [first] = await store.enqueue([NewEnvelope("bob", "alice", "m1", b"x", 1.0)])
    reserved = await store.reserve_sid("alice", "m2")  # delivered, never written
    assert reserved is not None and reserved > first
    await store.close()

    store = SQLiteStore(path)
    try:
        assert await store.reserve_sid("alice", "m1") is None  # queued: a re-send
        again = await store.reserve_sid("alice", "m3")
        assert again is not None and again > reserved
        [stored] = await store.enqueue([NewEnvelope("bob", "alice", "m4", b"y", 2.0)])
        assert stored > again
    finally:
        await store.close()


async def test_a_second_connection_opened_before_the_commit_gets_everything_in_order(
    slow_commits: RelayServer,
) -> None:
    alice = await signed_up(url_of(slow_commits), "alice")
    phone = await signed_up(url_of(slow_commits), "bob")
    await send(alice, "bob", "m1")
    [early] = (await phone.next_push("deliver"))["envelopes"]
    laptop = await logged_in(url_of(slow_commits), "bob")
    await send(alice, "bob", "m2")

    got: list[dict[str, object]] = []
    while len(got) < 2:
        got += (await laptop.next_push("deliver"))["envelopes"]
    assert [e["eid"] for e in got] == ["m1", "m2"]
    assert got[0]["sid"] == early["sid"]
    assert [(await alice.recv())["type"] for _ in range(2)] == ["accepted", "accepted"]
    with pytest.raises(TimeoutError):
        await laptop.next_push("deliver", timeout=0.3)


async def test_the_commit_answers_everyone_even_under_load(slow_commits: RelayServer) -> None:
    """Twenty senders, half acknowledged early: every sender is answered, no envelope lost."""
    bob = await signed_up(url_of(slow_commits), "bob")
    senders = [await signed_up(url_of(slow_commits), f"sender{i}") for i in range(20)]
    for i, sender in enumerate(senders):
        await send(sender, "bob", f"m{i}")
    received: list[dict[str, object]] = []
    while len(received) < 20:
        received += (await bob.next_push("deliver"))["envelopes"]
    await bob.send({"type": "ack", "rid": 0, "sids": [e["sid"] for e in received[::2]]})
    answers = await asyncio.gather(*(sender.recv() for sender in senders))
    assert all(a["type"] == "accepted" for a in answers)
    stored = await slow_commits.store.pending("bob", 0, 100)
    assert sorted(e.eid for e in stored) == sorted(str(e["eid"]) for e in received[1::2])


async def test_two_processes_on_one_database_claim_disjoint_sid_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two relays behind a Redis bus may share one SQLite file: their sids never clash."""
    monkeypatch.setattr(sqlite_queue, "SID_BLOCK", 4)
    path = tmp_path / "relay.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    try:
        sids: list[int] = []
        for i in range(20):
            store = first if i % 3 else second
            sids += await store.enqueue([NewEnvelope("bob", "alice", f"m{i}", b"x", float(i))])
        assert len(set(sids)) == 20
        stored = await first.pending("bob", 0, 100)
        assert sorted(e.eid for e in stored) == sorted(f"m{i}" for i in range(20))
    finally:
        await first.close()
        await second.close()
