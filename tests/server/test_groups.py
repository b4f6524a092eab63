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

from securechat.crypto.mls.framing import ContentType, MLSMessage, PrivateMessage
from securechat.server.app import RelayServer
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.records import NewGroupSend, QueueLimits
from tests.conftest import fast_config
from tests.server.test_group_store import count
from tests.services import pg_schema
from tests.wire import Wire, b64, logged_in, signed_up

GROUP_ID = os.urandom(16)
GROUP = b64(GROUP_ID)

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
    assert (relay.metrics.group_messages_accepted, relay.metrics.group_commits_accepted) == (1, 2)
    for wire in (alice, bob, carol, dave):
        await wire.close()


async def test_two_commits_for_one_epoch_one_wins_and_the_loser_catches_up(
    start_relay: StartRelay,
) -> None:
    """The loser hears the current epoch and fetches the Commits it missed, in order."""
    relay = await start_relay()
    alice, bob = await founded(relay, "bob")
    answers = await asyncio.gather(commit(alice, 2, "a2"), commit(bob, 2, "b2"))
    assert sorted(a["type"] for a in answers) == ["group_accepted", "group_conflict"]
    lost = next(a for a in answers if a["type"] == "group_conflict")
    assert lost["epoch"] == 3
    loser, winner = (bob, "a2") if answers[0]["type"] == "group_accepted" else (alice, "b2")
    assert await deliveries(loser, 1) == [("commit", 2, winner)]
    fetched = await loser.call("group_fetch", group=GROUP, since=0)
    assert fetched["epoch"] == 3
    assert [(c["epoch"], c["commit"]) for c in fetched["commits"]] == [
        (0, b64(b"Ccreate")),
        (1, b64(b"Cadd")),
        (2, b64(b"C" + winner.encode())),
    ]
    assert (await commit(loser, 3, "retry"))["type"] == "group_accepted"
    for wire in (alice, bob):
        await wire.close()


async def test_only_members_commit_send_or_fetch(start_relay: StartRelay) -> None:
    """A non-member is refused with a clear error, an unknown group past epoch 0 is not
    found, and a stale send is a conflict; the relay keeps serving the members."""
    relay = await start_relay()
    alice, bob = await founded(relay, "bob")
    mallory = await signed_up(url(relay), "mallory")
    for answer in (
        await commit(mallory, 2, "m"),
        await group_send(mallory, 2, "m"),
        await mallory.call("group_fetch", group=GROUP, since=0),
    ):
        assert answer["type"] == "error" and answer["code"] == "forbidden", answer
        assert answer["message"] == "you are not a member of this group"
    unknown = await mallory.call(
        "group_commit", group=b64(os.urandom(16)), epoch=5, eid="x", commit=b64(b"c")
    )
    assert unknown["code"] == "not_found" and "epoch 0" in unknown["message"]
    stale = await group_send(bob, 1, "late")
    assert (stale["type"], stale["epoch"]) == ("group_conflict", 2)
    assert (await group_send(bob, 2, "fine"))["type"] == "accepted"
    assert await deliveries(alice, 1) == [("message", 2, "fine")]
    for wire in (alice, bob, mallory):
        await wire.close()


async def test_a_removed_member_gets_the_removing_commit_and_nothing_after(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    alice, bob, carol = await founded(relay, "bob", "carol")
    assert (await commit(alice, 2, "rm", removed=["carol"]))["type"] == "group_accepted"
    assert await deliveries(carol, 1) == [("commit", 2, "rm")]
    assert (await group_send(alice, 3, "secret"))["type"] == "accepted"
    assert await deliveries(bob, 2) == [("commit", 2, "rm"), ("message", 3, "secret")]
    await nothing_more(carol)
    assert (await group_send(carol, 3, "still"))["code"] == "forbidden"
    for wire in (alice, bob, carol):
        await wire.close()


async def test_an_offline_member_catches_up_in_order_after_a_restart(
    start_relay: StartRelay,
) -> None:
    """Commits come before the messages of the epoch they start, across a restart."""
    relay = await start_relay()
    alice, bob = await founded(relay, "bob")
    await bob.close()
    assert (await group_send(alice, 2, "m2"))["type"] == "accepted"
    assert (await commit(alice, 2, "c2"))["type"] == "group_accepted"
    assert (await group_send(alice, 3, "m3"))["type"] == "accepted"
    assert (await commit(alice, 3, "c3"))["type"] == "group_accepted"
    assert (await group_send(alice, 4, "m4"))["type"] == "accepted"
    await alice.close()
    await relay.stop()
    relay = await start_relay()
    bob = await logged_in(url(relay), "bob")
    assert await deliveries(bob, 5) == [
        ("message", 2, "m2"),
        ("commit", 2, "c2"),
        ("message", 3, "m3"),
        ("commit", 3, "c3"),
        ("message", 4, "m4"),
    ]
    await bob.close()


async def test_hostile_group_input_gets_clear_errors_and_the_relay_keeps_serving(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(group_max_members=3, group_welcome_max_bytes=1024)
    alice, bob = await founded(relay, "bob")
    for name in ("carol", "dave"):
        await (await signed_up(url(relay), name)).close()
    big = await alice.call(
        "group_commit",
        group=GROUP,
        epoch=2,
        eid="big",
        commit=b64(b"c"),
        welcome=b64(b"w" * 1025),
        added=["carol"],
    )
    assert big["code"] == "too_large" and "Welcome may be at most 1024 bytes" in big["message"]
    crowd = await commit(alice, 2, "crowd", added=["carol", "dave"])
    assert crowd["code"] == "too_large" and "at most 3 members" in crowd["message"]
    nobody = await commit(alice, 2, "nobody", added=["nobody"])
    assert nobody["code"] == "not_found" and "nobody" in nobody["message"]
    twice = await commit(alice, 2, "twice", added=["bob"])
    assert twice["code"] == "bad_request" and "bob is a member already" in twice["message"]
    no_welcome = await alice.call(
        "group_commit", group=GROUP, epoch=2, eid="nw", commit=b64(b"c"), added=["carol"]
    )
    assert no_welcome["code"] == "bad_request" and "Welcome" in no_welcome["message"]
    short_id = await alice.call("group_fetch", group=b64(b"short"), since=0)
    assert short_id["code"] == "bad_request"
    huge = await alice.call(
        "publish_key_packages", device="d", key_packages=[b64(b"k" * (16 * 1024 + 1))]
    )
    assert huge["code"] == "bad_request"
    state = await relay.store.group_state(GROUP_ID)
    assert state is not None and (state.epoch, state.members) == (2, {"alice", "bob"})
    assert (await commit(alice, 2, "ok", added=["carol"]))["type"] == "group_accepted"
    assert (await group_send(bob, 3, "still-here"))["type"] == "accepted"
    for wire in (alice, bob):
        await wire.close()


def proposal(eid: str) -> str:
    """A PrivateMessage of the group whose clear header says proposal (its content is not
    the relay's business, so any bytes do)."""
    message = PrivateMessage(GROUP_ID, 2, ContentType.PROPOSAL, b"", b"sender", eid.encode())
    return b64(MLSMessage(message).encode())


async def queue_emptied(relay: RelayServer, user: str) -> None:
    """Acknowledgements are written a moment after they arrive."""
    async with asyncio.timeout(5):
        while await relay.store.queue_usage(user) != (0, 0):
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("limit", "body"),
    [({"queue_max_count": 3}, b"M"), ({"queue_max_bytes": 1024}, b"M" * 341)],
    ids=["count", "bytes"],
)
async def test_a_full_member_is_skipped_named_and_still_gets_commits_and_proposals(
    start_relay: StartRelay, limit: dict[str, int], body: bytes
) -> None:
    """carol is away and her queue fills (count or bytes, the one-to-one limits): the
    next message reaches bob, and alice hears that carol got none; a Commit and a
    proposal reach carol all the same, and back online she reads all but that message."""
    relay = await start_relay(**limit)
    alice, bob, carol = await founded(relay, "bob", "carol")
    await carol.close()
    await queue_emptied(relay, "carol")
    for n in range(3):
        sent = await alice.call("group_send", group=GROUP, epoch=2, eid=f"m{n}", body=b64(body))
        assert sent == {"type": "accepted", "rid": alice.rid, "eid": f"m{n}"}
    expected = [("message", 2, f"m{n}") for n in range(3)]
    assert await deliveries(bob, 3) == expected
    await queue_emptied(relay, "bob")
    withheld = await alice.call("group_send", group=GROUP, epoch=2, eid="m3", body=b64(body))
    assert withheld == {"type": "accepted", "rid": alice.rid, "eid": "m3", "full": ["carol"]}
    proposed = await alice.call("group_send", group=GROUP, epoch=2, eid="p", body=proposal("p"))
    assert proposed == {"type": "accepted", "rid": alice.rid, "eid": "p"}
    assert (await commit(alice, 2, "c2"))["type"] == "group_accepted"
    assert await deliveries(bob, 3) == [
        ("message", 2, "m3"),
        ("message", 2, "p"),
        ("commit", 2, "c2"),
    ]
    assert relay.metrics.group_copies_withheld == 1
    carol = await logged_in(url(relay), "carol")
    assert await deliveries(carol, 5) == [*expected, ("message", 2, "p"), ("commit", 2, "c2")]
    await nothing_more(carol)
    for wire in (alice, bob, carol):
        await wire.close()


async def upload(wire: Wire, data: bytes, readers: list[str], *, finish: bool = True) -> str:
    begun = await wire.call("file_begin", size=len(data), recipients=readers)
    if finish:
        ready = await wire.call("file_chunk", file_id=begun["file_id"], index=0, data=b64(data))
        assert ready["complete"] is True
    return str(begun["file_id"])


async def test_a_welcome_too_large_to_travel_inline_goes_as_a_file(
    start_relay: StartRelay,
) -> None:
    """The added user gets a `welcome` naming the file (its body empty) and fetches it;
    the relay refuses a file that is not the sender's finished upload readable by every
    added user, and a Commit with both kinds of Welcome."""
    relay = await start_relay()
    alice, bob = await founded(relay, "bob")
    carol = await signed_up(url(relay), "carol")
    dave = await signed_up(url(relay), "dave")
    welcome = os.urandom(3000)

    unfinished = await upload(alice, welcome, ["carol"], finish=False)
    not_readable = await upload(alice, welcome, ["dave"])
    bobs = await upload(bob, welcome, ["carol"])

    async def commit_welcoming_carol(**welcome: str) -> dict[str, Any]:
        return await alice.call(
            "group_commit",
            group=GROUP,
            epoch=2,
            eid="f",
            commit=b64(b"c"),
            added=["carol"],
            **welcome,
        )

    for file_id, code, says in (
        (unfinished, "conflict", "not finished"),
        (not_readable, "bad_request", "not readable by carol"),
        (bobs, "not_found", ""),
    ):
        refused = await commit_welcoming_carol(welcome_file=file_id)
        assert refused["code"] == code and says in refused["message"]
    good = await upload(alice, welcome, ["carol"])
    both = await commit_welcoming_carol(welcome=b64(b"w"), welcome_file=good)
    assert both["code"] == "bad_request" and "not both" in both["message"]
    accepted = await commit_welcoming_carol(welcome_file=good)
    assert accepted["type"] == "group_accepted"
    push = await carol.next_push("group_deliver")
    (envelope,) = push["envelopes"]
    assert (envelope["kind"], envelope["eid"], envelope["file"]) == ("welcome", "f", good)
    assert envelope["body"] == ""
    got = await carol.call("file_get", file_id=good, index=0)
    assert (got["type"], got["data"], got["last"]) == ("file_data", b64(welcome), True)
    assert await deliveries(bob, 1) == [("commit", 2, "f")]
    for wire in (alice, bob, carol, dave):
        await wire.close()


async def test_a_resend_announces_a_copy_stored_but_never_announced(
    start_relay: StartRelay,
) -> None:
    """A node stored alice's message and died before announcing it (here: stored
    behind the relay's back): when alice sends it again, unsure of the first try,
    bob, online all along, gets the first copy at once, once."""
    relay = await start_relay()
    alice, bob = await founded(relay, "bob")
    first = NewGroupSend(GROUP_ID, 2, "alice", "lost", b"the first copy", 1.0)
    roomy = QueueLimits(max_count=100, max_bytes=1 << 20)
    [stored] = await relay.store.group_send_batch([first], roomy)
    assert stored.status == "stored"
    await nothing_more(bob)
    assert (await group_send(alice, 2, "lost"))["type"] == "accepted"
    push = await bob.next_push("group_deliver")
    assert [(e["eid"], e["body"]) for e in push["envelopes"]] == [("lost", b64(b"the first copy"))]
    await bob.send({"type": "ack", "rid": 0, "sids": [e["sid"] for e in push["envelopes"]]})
    await nothing_more(bob)
    for wire in (alice, bob):
        await wire.close()


async def test_group_messages_wait_their_own_commit_delay_not_the_one_to_one_one(
    start_relay: StartRelay,
) -> None:
    """A group message's copies leave only after its commit, so its batch waits
    `group_commit_delay`: a one-to-one send before it, whose batch waits the longer
    `commit_delay`, is answered after the group message."""
    relay = await start_relay(commit_delay=0.1, group_commit_delay=0.0)
    alice, bob = await founded(relay, "bob")
    alice.rid += 1
    await alice.send(
        {"type": "send", "rid": alice.rid, "to": "bob", "eid": "direct", "body": "eA=="}
    )
    alice.rid += 1
    await alice.send(
        {
            "type": "group_send",
            "rid": alice.rid,
            "group": GROUP,
            "epoch": 2,
            "eid": "g",
            "body": "eA==",
        }
    )
    first, second = await alice.recv(), await alice.recv()
    assert (first["eid"], second["eid"]) == ("g", "direct")
    assert await deliveries(bob, 1) == [("message", 2, "g")]
