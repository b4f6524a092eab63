"""The relay's behaviour seen from the wire."""

from __future__ import annotations

import asyncio

import pytest

from securechat.server.app import RelayServer
from tests.wire import PASSWORD, Wire, b64, logged_in, signed_up


async def test_online_envelope_is_delivered_with_stamped_sender(relay_url: str) -> None:
    """The recipient sees the authenticated sender, whatever the client claims."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    answer = await alice.call("send", to="bob", eid="m1", body=b64(b"ciphertext"))
    assert answer == {"type": "accepted", "rid": alice.rid, "eid": "m1"}
    deliver = await bob.next_push("deliver")
    [env] = deliver["envelopes"]
    assert env["sender"] == "alice" and env["eid"] == "m1" and env["body"] == b64(b"ciphertext")


async def test_offline_envelopes_arrive_in_order_on_login(relay_url: str) -> None:
    """Queued envelopes survive until the recipient logs in, oldest first."""
    bob = await signed_up(relay_url, "bob")
    await bob.close()
    alice = await signed_up(relay_url, "alice")
    for i in range(5):
        assert (await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x")))[
            "type"
        ] == "accepted"
    bob = await logged_in(relay_url, "bob")
    got: list[str] = []
    while len(got) < 5:
        got += [e["eid"] for e in (await bob.next_push("deliver"))["envelopes"]]
    assert got == [f"m{i}" for i in range(5)]


async def test_acknowledged_envelopes_are_not_redelivered(relay_url: str) -> None:
    """The relay forgets an envelope once the recipient acknowledged it."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    await alice.call("send", to="bob", eid="a", body=b64(b"1"))
    await alice.call("send", to="bob", eid="b", body=b64(b"2"))
    envs: list[dict] = []
    while len(envs) < 2:
        envs += (await bob.next_push("deliver"))["envelopes"]
    await bob.send({"type": "ack", "rid": 0, "sids": [envs[0]["sid"]]})
    await bob.call("watch", users=[])
    await bob.close()
    bob = await logged_in(relay_url, "bob")
    redelivered = (await bob.next_push("deliver"))["envelopes"]
    assert [e["eid"] for e in redelivered] == ["b"]


async def test_resent_envelope_id_is_idempotent(relay_url: str) -> None:
    """A client retrying after a lost `accepted` does not create a duplicate."""
    alice = await signed_up(relay_url, "alice")
    await signed_up(relay_url, "bob")
    for _ in range(3):
        assert (await alice.call("send", to="bob", eid="same", body=b64(b"x")))[
            "type"
        ] == "accepted"
    bob = await logged_in(relay_url, "bob")
    envs = (await bob.next_push("deliver"))["envelopes"]
    assert [e["eid"] for e in envs] == ["same"]


async def test_key_directory_hands_out_each_one_time_prekey_once(relay_url: str) -> None:
    """One-time prekeys are consumed; the bundle still comes without one."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    published = await bob.call(
        "publish_keys",
        identity=b64(b"ik"),
        signed_prekey=b64(b"spk"),
        kem_prekey=b64(b"kem"),
        one_time_prekeys=[b64(b"otk1"), b64(b"otk2")],
    )
    assert published["type"] == "done"
    first = await alice.call("fetch_bundle", user="bob")
    second = await alice.call("fetch_bundle", user="bob")
    third = await alice.call("fetch_bundle", user="bob")
    assert {first["one_time_prekey"], second["one_time_prekey"]} == {b64(b"otk1"), b64(b"otk2")}
    assert third["one_time_prekey"] is None and third["identity"] == b64(b"ik")
    missing = await alice.call("fetch_bundle", user="nobody")
    assert missing["code"] == "not_found"


async def test_key_directory_hands_out_each_one_time_kem_prekey_once(relay_url: str) -> None:
    """One-time ML-KEM prekeys are served beside the last-resort one, each once, and counted."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    await bob.call(
        "publish_keys",
        identity=b64(b"ik"),
        signed_prekey=b64(b"spk"),
        kem_prekey=b64(b"kem"),
        one_time_prekeys=[],
        one_time_kem_prekeys=[b64(b"pq1")],
    )
    first = await alice.call("fetch_bundle", user="bob")
    second = await alice.call("fetch_bundle", user="bob")
    assert first["one_time_kem_prekey"] == b64(b"pq1") and first["kem_prekey"] == b64(b"kem")
    assert second["one_time_kem_prekey"] is None and second["kem_prekey"] == b64(b"kem")
    again = await Wire.open(relay_url)
    session = await again.call("login", username="bob", password=PASSWORD)
    assert session["one_time_kem_prekeys"] == 0 and session["one_time_prekeys"] == 0


async def test_presence_is_shared_only_between_users_who_follow_each_other(
    relay_url: str,
) -> None:
    """A watch alone shows nothing, and neither does an envelope: bob's presence reaches
    alice once bob watches her too, and users who do not follow each other both ways
    learn nothing of each other."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    carol = await signed_up(relay_url, "carol")
    states = await alice.call("watch", users=["bob", "carol"])
    assert states["states"] == {"bob": "unknown", "carol": "unknown"}
    await alice.call("send", to="bob", eid="hi", body=b64(b"x"))
    with pytest.raises(TimeoutError):
        await alice.next_push("presence", timeout=0.3)
    # bob's watch of alice starts the watch alice asked for.
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "online"}
    push = await alice.next_push("presence")
    assert push["user"] == "bob" and push["state"] == "online"
    assert (await alice.call("watch", users=["bob"]))["states"] == {"bob": "online"}
    # dave follows alice, but alice does not follow dave: he sees nothing of her.
    dave = await signed_up(relay_url, "dave")
    assert (await dave.call("watch", users=["alice"]))["states"] == {"alice": "unknown"}
    await bob.close()
    push = await alice.next_push("presence")
    assert push["user"] == "bob" and push["state"] == "offline"
    await carol.close()  # followed by alice, never following her
    with pytest.raises(TimeoutError):
        await alice.next_push("presence", timeout=0.3)
    await alice.close()
    with pytest.raises(TimeoutError):
        await dave.next_push("presence", timeout=0.3)
    bob = await logged_in(relay_url, "bob")
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "offline"}


async def test_deleting_a_conversation_ends_the_watches_both_ways(relay_url: str) -> None:
    """After either side deletes the conversation, presence is theirs to share again, not
    ours: neither sees the other until the one who deleted watches again."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    await alice.call("watch", users=["bob"])
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "online"}
    assert (await alice.next_push("presence"))["state"] == "online"
    assert (await bob.call("delete_conversation", peer="alice"))["type"] == "done"
    await alice.close()
    with pytest.raises(TimeoutError):
        await bob.next_push("presence", timeout=0.5)  # bob's watch of alice ended
    alice = await logged_in(relay_url, "alice")
    assert (await alice.call("watch", users=["bob"]))["states"] == {"bob": "unknown"}
    await bob.close()
    with pytest.raises(TimeoutError):
        await alice.next_push("presence", timeout=0.5)
    bob = await logged_in(relay_url, "bob")
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "online"}
    push = await alice.next_push("presence")
    assert push["user"] == "bob" and push["state"] == "online"


async def test_a_watch_whose_read_spans_the_other_sides_watch_still_follows_presence(
    relay: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice's watch reads who follows her, then bob watches her before her answer is
    built (a store slow to answer, PostgreSQL): the watch must start anyway, not wait
    for a watch of bob's that already happened."""
    url = f"ws://127.0.0.1:{relay.port}"
    store = relay.relay.store
    read = store.watchers_of
    bob_watched = asyncio.Event()

    async def read_then_stall(username: str) -> set[str]:
        followers = await read(username)
        if username == "alice":
            await bob_watched.wait()
        return followers

    alice = await signed_up(url, "alice")
    bob = await signed_up(url, "bob")
    monkeypatch.setattr(store, "watchers_of", read_then_stall)
    alice.rid += 1
    await alice.send({"type": "watch", "rid": alice.rid, "users": ["bob"]})
    while not await read("bob"):
        await asyncio.sleep(0.01)  # alice's watch is recorded, her read under way
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "online"}
    bob_watched.set()
    presence = await alice.next_push("presence")
    assert presence["user"] == "bob" and presence["state"] == "online"
    answer = await alice.next_push("presence_list")
    assert answer["states"] == {"bob": "online"}
    await bob.close()
    presence = await alice.next_push("presence")
    assert presence["user"] == "bob" and presence["state"] == "offline"


@pytest.mark.parametrize(
    ("queue_max_count", "sends", "expected_last"),
    [(2, 3, "rate_limited")],
)
async def test_full_queue_is_refused_with_a_clear_error(
    tmp_path, queue_max_count: int, sends: int, expected_last: str
) -> None:
    """A recipient's queue has a bound, and the sender is told why."""
    from securechat.server.app import RelayServer
    from tests.conftest import fast_config

    server = RelayServer(fast_config(tmp_path, queue_max_count=queue_max_count))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        alice = await signed_up(url, "alice")
        bob = await signed_up(url, "bob")
        await bob.close()
        answers = [
            await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x")) for i in range(sends)
        ]
        assert answers[-1]["code"] == expected_last
        assert "queue is full" in answers[-1]["message"]
    finally:
        await server.stop()


async def test_resent_envelope_does_not_fill_the_queue(tmp_path) -> None:
    """Re-sending one envelope is neither counted twice nor delivered twice."""
    from securechat.server.app import RelayServer
    from tests.conftest import fast_config

    server = RelayServer(fast_config(tmp_path, queue_max_count=3))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        alice = await signed_up(url, "alice")
        bob = await signed_up(url, "bob")
        await signed_up(url, "carol")
        for _ in range(10):
            answer = await alice.call("send", to="bob", eid="same", body=b64(b"x"))
            assert answer["type"] == "accepted"
        other = await alice.call("send", to="carol", eid="same", body=b64(b"x"))
        assert other["code"] == "conflict"
        got = []
        while True:
            try:
                got += [
                    e["eid"] for e in (await bob.next_push("deliver", timeout=0.5))["envelopes"]
                ]
            except TimeoutError:
                break
        assert got == ["same"]
        assert (await alice.call("send", to="bob", eid="next", body=b64(b"x")))[
            "type"
        ] == "accepted"
    finally:
        await server.stop()
