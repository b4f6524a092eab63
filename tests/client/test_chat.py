"""Two headless clients through a real relay: the end-to-end path of issue 3."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.client import connection as client_connection
from securechat.client.connection import CLIENT_PING_INTERVAL, CLIENT_PING_TIMEOUT
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    KeyChanged,
    KeyShared,
    MessageReceived,
    PresenceChanged,
)
from securechat.errors import SessionError
from securechat.server.app import RelayServer
from securechat.server.config import ServerConfig
from tests.client.helpers import PASSWORD, clients, drain, secure, wait_for
from tests.conftest import fast_config
from tests.wire import signed_up


@pytest.fixture
async def pair(relay_url: str, tmp_path: Path) -> AsyncIterator[tuple[ChatClient, ChatClient]]:
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        yield alice, bob


async def test_two_clients_exchange_messages_end_to_end(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """sharekey, talk, then messages both ways, each side E2E active."""
    alice, bob = pair
    await secure(alice, bob)
    await alice.send_text("bob", "hello bob")
    received = await wait_for(bob, MessageReceived)
    assert received.text == "hello bob" and received.peer == "alice"
    await bob.send_text("alice", "hi alice")
    assert (await wait_for(alice, MessageReceived)).text == "hi alice"
    assert alice.conversation_state("bob") == ConversationState.ACTIVE
    assert alice.verify("bob").pinned == bob.verify("alice").pinned


async def test_plain_message_without_session_is_refused(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """Nothing goes out in clear: no session, no send, and the error says what to do."""
    alice, _ = pair
    with pytest.raises(SessionError, match="talk bob"):
        await alice.send_text("bob", "secret")


async def test_session_starts_while_peer_is_offline(relay_url: str, tmp_path: Path) -> None:
    """talk works against the directory; the peer picks it up on login."""
    alice = ChatClient(relay_url, tmp_path / "a")
    bob = ChatClient(relay_url, tmp_path / "b")
    await alice.connect()
    await bob.connect()
    await alice.register("alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    await bob.close()
    await alice.talk("bob")
    await alice.send_text("bob", "left while you were away")
    bob = ChatClient(relay_url, tmp_path / "b")
    await bob.connect()
    await bob.login("bob", PASSWORD)
    assert (await wait_for(bob, MessageReceived)).text == "left while you were away"
    await alice.close()
    await bob.close()


async def test_swapped_directory_key_is_detected(
    pair: tuple[ChatClient, ChatClient], relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """A relay serving another identity for a pinned contact raises a key change, not a session."""
    alice, bob = pair
    await bob.sharekey("alice")
    await wait_for(alice, ConversationChanged, peer="bob")
    impostor = ChatClient(relay_url, tmp_path / "impostor")
    await impostor.connect()
    await impostor.register("mallory", PASSWORD)
    swap_directory_entry(relay, victim="bob", attacker="mallory")
    with pytest.raises(SessionError, match="different key"):
        await alice.talk("bob")
    event = await wait_for(alice, KeyChanged, peer="bob")
    assert event.pinned_fingerprint != event.offered_fingerprint
    assert alice.conversation_state("bob") == ConversationState.KEY_CHANGED
    with pytest.raises(SessionError, match="key changed"):
        await alice.send_text("bob", "anything")
    await impostor.close()


def swap_directory_entry(relay: RelayServer, victim: str, attacker: str) -> None:
    """What a lying relay does: serve the attacker's bundle under the victim's name."""
    db = relay.store._db  # type: ignore[attr-defined]
    db.execute("DELETE FROM identity_keys WHERE username = ?", (victim,))
    db.execute("UPDATE identity_keys SET username = ? WHERE username = ?", (victim, attacker))
    db.execute("UPDATE one_time_prekeys SET username = ? WHERE username = ?", (victim, attacker))


async def test_receipt_is_not_overwritten_by_a_late_accept(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """`delivered` wins over a `sent` that arrives after it: states only move forward."""
    alice, bob = pair
    await secure(alice, bob)
    eid = await alice.send_text("bob", "ping")
    await wait_for(alice, DeliveryChanged, eid=eid, state=DeliveryState.DELIVERED)
    vault = alice.vault
    assert vault is not None
    assert vault.update_delivery(eid, DeliveryState.SENT) is None
    assert [m.record.state for m in alice.history("bob")] == [DeliveryState.DELIVERED]


async def test_new_conversation_follows_presence(pair: tuple[ChatClient, ChatClient]) -> None:
    """After sharekey both ways each side learns the other's presence without a re-login."""
    alice, bob = pair
    await alice.sharekey("bob")
    assert (await wait_for(alice, PresenceChanged, user="bob")).state == "online"
    await wait_for(bob, KeyShared, peer="alice")
    await bob.close()
    assert (await wait_for(alice, PresenceChanged, user="bob", state="offline")).user == "bob"


async def test_signed_prekey_rotates_after_a_week(
    pair: tuple[ChatClient, ChatClient], relay: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old signed prekey is replaced in the directory; sessions still start afterwards."""
    import time as real_time

    alice, bob = pair
    before = (await relay.store.fetch_bundle("bob")).signed_prekey  # type: ignore[union-attr]
    week_later = real_time.time() + 8 * 86400
    monkeypatch.setattr("securechat.client.directory.time.time", lambda: week_later)
    await bob.keys.maintain(remaining_on_relay=1000)
    after = (await relay.store.fetch_bundle("bob")).signed_prekey  # type: ignore[union-attr]
    assert after != before
    monkeypatch.undo()
    await secure(alice, bob)
    await alice.send_text("bob", "after rotation")
    assert (await wait_for(bob, MessageReceived)).text == "after rotation"


async def test_message_to_a_deleted_account_fails_with_the_reason(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """The relay refuses it instead of queueing it for a month; the sender sees why."""
    alice, bob = pair
    await secure(alice, bob)
    await bob.delete_account(PASSWORD)
    eid = await alice.send_text("bob", "are you there?")
    failed = await wait_for(alice, DeliveryChanged, eid=eid, state=DeliveryState.FAILED)
    assert isinstance(failed, DeliveryChanged)
    assert failed.detail == "no account named 'bob'"
    assert alice.peer_deleted("bob")


async def test_a_contact_who_deletes_their_account_is_remembered_as_deleted(
    relay_url: str, tmp_path: Path
) -> None:
    """The relay's `deleted` push is kept in the vault: after a restart it still shows, and
    alice no longer follows the name, so whoever registers it next learns nothing of her
    presence by watching her."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        assert not alice.peer_deleted("bob")
        await bob.delete_account(PASSWORD)
        await wait_for(alice, PresenceChanged, user="bob", state="deleted")
        assert alice.peer_deleted("bob")
    new_bob = await signed_up(relay_url, "bob")
    again = ChatClient(relay_url, tmp_path / "alice")
    try:
        await again.connect()
        await again.login("alice", PASSWORD)
        assert again.peer_deleted("bob")
        assert (await new_bob.call("watch", users=["alice"]))["states"] == {"alice": "unknown"}
    finally:
        await again.close()


async def test_a_format_1_message_from_an_older_client_is_still_shown(
    relay: RelayServer, pair: tuple[ChatClient, ChatClient]
) -> None:
    """The unpadded `msg` envelope with a text carrying its own time opens as before."""
    import time

    from securechat.client import payloads as P
    from securechat.crypto import ratchet
    from securechat.crypto.ratchet import RatchetState
    from securechat.server.store import NewEnvelope

    alice, bob = pair
    await secure(alice, bob)
    assert alice.vault is not None
    state = RatchetState.from_bytes(alice.vault.get("session:bob") or b"")
    plaintext = P.encode(P.Text(text="from an old client", ts=1_700_000_000.0))
    state, message = ratchet.encrypt(state, plaintext, "alice", "bob")
    alice.vault.put("session:bob", state.to_bytes())
    body = P.encode(P.RatchetEnvelope(message=message.to_bytes()))
    await relay.store.enqueue([NewEnvelope("bob", "alice", "old-format", body, time.time())])
    for outlet in relay.relay.online.get("bob", ()):
        outlet.wake_backlog()
    event = await wait_for(bob, MessageReceived)
    assert isinstance(event, MessageReceived)
    assert (event.text, event.ts) == ("from an old client", 1_700_000_000.0)
    await alice.send_text("bob", "and a new one")
    assert (await wait_for(bob, MessageReceived)).text == "and a new one"


async def test_deleting_a_conversation_keeps_the_peers_session_working(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """Only history goes: the peer's next message opens, and the reply reaches them."""
    alice, bob = pair
    await secure(alice, bob)
    await alice.send_text("bob", "before the delete")
    await wait_for(bob, MessageReceived, text="before the delete")
    await alice.delete_conversation("bob")
    assert alice.history("bob") == []
    await bob.send_text("alice", "still there?")
    received = await wait_for(alice, MessageReceived, peer="bob")
    assert received.text == "still there?"
    assert not [e for e in drain(alice) if isinstance(e, ErrorRaised)]
    assert alice.conversation_state("bob") == ConversationState.ACTIVE
    assert [c.peer for c in alice.conversations()] == ["bob"]
    await alice.send_text("bob", "yes")
    assert (await wait_for(bob, MessageReceived, text="yes")).peer == "alice"
    # Opened anew by bob's message: alice follows bob again without signing in anew.
    await bob.close()
    await wait_for(alice, PresenceChanged, user="bob", state="offline", timeout=5)


async def test_presence_comes_back_when_the_side_that_deleted_writes_first(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """Deleting a conversation ends alice's follow of bob; her next message to him opens
    the conversation anew and follows him again, without signing in anew."""
    alice, bob = pair
    await secure(alice, bob)
    await alice.send_text("bob", "before the delete")
    await wait_for(bob, MessageReceived, text="before the delete")
    await alice.delete_conversation("bob")
    await alice.send_text("bob", "me again")
    await wait_for(bob, MessageReceived, text="me again")
    await bob.close()
    await wait_for(alice, PresenceChanged, user="bob", state="offline", timeout=5)


async def test_the_receiving_side_follows_presence_from_the_first_envelope(
    pair: tuple[ChatClient, ChatClient],
) -> None:
    """bob, who only received alice's key, sees her online at once and offline when she quits."""
    alice, bob = pair
    await alice.sharekey("bob")
    await wait_for(bob, KeyShared, peer="alice")
    # bob's watch may run before alice's ("unknown"); alice's then starts it: "online"
    # follows at once, not after a restart.
    await wait_for(bob, PresenceChanged, user="alice", state="online", timeout=5)
    await alice.close()
    assert await wait_for(bob, PresenceChanged, user="alice", state="offline", timeout=5)


async def test_a_watch_answer_read_with_a_newer_presence_push_does_not_undo_it(
    relay_url: str, tmp_path: Path
) -> None:
    """The relay answers bob's watch "unknown" and pushes "online" when alice watches back
    a moment later; read together, the push was shown first and the answer's task then
    undid it, and bob saw "alice offline" for the whole session."""
    alice = await signed_up(relay_url, "alice")
    async with clients(relay_url, tmp_path, "bob") as (bob,):
        connection = bob.relay._conn
        assert connection is not None
        connection.ws.transport.pause_reading()
        watching = asyncio.create_task(bob._ctx.watch(["alice"]))
        await asyncio.sleep(0.3)  # the relay answers bob's watch "unknown"
        assert (await alice.call("watch", users=["bob"]))["states"] == {"bob": "online"}
        drain(bob)
        connection.ws.transport.resume_reading()
        await watching
        states = [e.state for e in drain(bob) if isinstance(e, PresenceChanged)]
        assert states and states[-1] == "online"
    await alice.close()


@pytest.mark.parametrize("lost", ["alice", "bob"])
async def test_presence_goes_offline_soon_after_a_silent_network_loss(
    tmp_path: Path, lost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One side's socket stops answering (no FIN, as when a network drops): the keepalives
    notice on both ends. The other side sees it offline, and the side that lost the
    network learns it is disconnected (its presence view is then unknown, not stale)."""
    monkeypatch.setattr(client_connection, "CLIENT_PING_INTERVAL", 0.3)
    monkeypatch.setattr(client_connection, "CLIENT_PING_TIMEOUT", 0.3)
    server = RelayServer(fast_config(tmp_path / "relay", ping_interval=0.3, ping_timeout=0.3))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        async with clients(url, tmp_path, "alice", "bob") as (alice, bob):
            await secure(alice, bob)
            loser, watcher = (alice, bob) if lost == "alice" else (bob, alice)
            drain(watcher)
            connection = loser.relay._conn
            assert connection is not None
            connection.ws.transport.pause_reading()
            offline = await wait_for(
                watcher, PresenceChanged, user=lost, state="offline", timeout=3
            )
            assert isinstance(offline, PresenceChanged)
    finally:
        await server.stop()


def test_the_default_keepalive_notices_a_dead_connection_within_ten_seconds() -> None:
    """Presence follows a network loss within seconds, not the websockets default's minute."""
    config = ServerConfig()
    assert config.ping_interval + 2 * config.ping_timeout <= 10
    assert CLIENT_PING_INTERVAL + CLIENT_PING_TIMEOUT <= 10
