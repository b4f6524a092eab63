"""A relay that lies, seen by two real clients: every trick is caught and shown."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.client.events import ErrorRaised, MessageReceived
from securechat.server.app import RelayServer
from securechat.server.store import KeyBundle, NewEnvelope
from tests.client.helpers import clients, drain, secure, wait_for


@pytest.fixture
async def trio(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChatClient, ChatClient, ChatClient]]:
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await secure(alice, bob)
        yield alice, bob, carol


async def _captured_body(relay: RelayServer, alice: ChatClient, bob: ChatClient) -> bytes:
    """Alice sends one message; the relay keeps a copy of its ciphertext on the way."""
    bodies: list[bytes] = []
    original = relay.store.commit_batch

    async def spy(envelopes, acks, acknowledged=()):  # type: ignore[no-untyped-def]
        # Delivered and acknowledged before the commit, it is not written, but it passed.
        seen = [*envelopes, *acknowledged]
        bodies.extend(e.body for e in seen if e.sender == "alice" and e.recipient == "bob")
        return await original(envelopes, acks, acknowledged)

    relay.store.commit_batch = spy  # type: ignore[method-assign]
    await alice.send_text("bob", "pay carol 10 euros")
    assert (await wait_for(bob, MessageReceived)).text == "pay carol 10 euros"
    relay.store.commit_batch = original  # type: ignore[method-assign]
    return bodies[0]


async def _inject(relay: RelayServer, recipient: str, sender: str, eid: str, body: bytes) -> None:
    """What a malicious relay can do: queue any bytes under any sender name."""
    await relay.store.enqueue([NewEnvelope(recipient, sender, eid, body, time.time())])
    for outlet in relay.relay.online.get(recipient, ()):
        outlet.wake_backlog()


async def test_replayed_envelope_is_rejected(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """The same ciphertext under a new envelope id opens nothing and says why."""
    alice, bob, _ = trio
    body = await _captured_body(relay, alice, bob)
    await _inject(relay, "bob", "alice", "replayed-id", body)
    error = await wait_for(bob, ErrorRaised)
    assert "rejected" in error.message
    assert not any(isinstance(event, MessageReceived) for event in drain(bob))
    assert [m.record.text for m in bob.history("alice")].count("pay carol 10 euros") == 1


async def test_rewritten_sender_is_rejected(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Alice's ciphertext presented as Carol's fails: names are bound into every message."""
    alice, bob, carol = trio
    await secure(carol, bob)
    body = await _captured_body(relay, alice, bob)
    await _inject(relay, "bob", "carol", "forged", body)
    error = await wait_for(bob, ErrorRaised)
    assert "carol" in error.message
    assert all(m.record.text != "pay carol 10 euros" for m in bob.history("carol"))


async def test_reflected_message_is_rejected(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Alice's own message sent back to her as if from Bob does not open."""
    alice, bob, _ = trio
    body = await _captured_body(relay, alice, bob)
    await _inject(relay, "alice", "bob", "reflected", body)
    error = await wait_for(alice, ErrorRaised)
    assert "bob" in error.message
    assert all(
        not (m.record.text == "pay carol 10 euros" and not m.record.outgoing)
        for m in alice.history("bob")
    )


async def test_garbage_envelope_is_rejected_and_the_session_survives(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Random bytes from the relay are an error event; later messages still open."""
    alice, bob, _ = trio
    await _inject(relay, "bob", "alice", "junk", b"\x00\xff not msgpack")
    assert "rejected" in (await wait_for(bob, ErrorRaised)).message
    await alice.send_text("bob", "still here")
    assert (await wait_for(bob, MessageReceived)).text == "still here"


async def test_changed_key_by_sharekey_needs_explicit_trust(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """A second `sharekey` with another key is refused until `verify` and `trust`."""
    from securechat.client import payloads as P
    from securechat.client.events import ConversationState, KeyChanged
    from securechat.errors import SessionError

    alice, _, carol = trio
    assert carol.identity is not None
    forged = P.encode(
        P.SharedKey(
            identity=carol.identity.public.der,
            identity_dh=carol.identity.signed_dh_public().to_bytes(),
        )
    )
    before = alice.verify("bob")
    await _inject(relay, "alice", "bob", "new-key", forged)
    event = await wait_for(alice, KeyChanged, peer="bob")
    assert event.offered_fingerprint == carol.identity.public.fingerprint_hex()
    assert alice.conversation_state("bob") == ConversationState.KEY_CHANGED
    with pytest.raises(SessionError, match="verify bob"):
        await alice.send_text("bob", "are you still you?")
    assert alice.verify("bob") != before
    assert alice.trust("bob") == carol.identity.public.fingerprint_hex()
    assert alice.conversation_state("bob") == ConversationState.NONE


async def test_replayed_session_start_leaves_the_live_session_alone(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """A relay that withholds one-time prekeys, then replays the session start, changes nothing."""
    from securechat.client import payloads as P
    from securechat.crypto.handshake import InitialMessage

    _, bob, carol = trio
    original_fetch = relay.store.fetch_bundle

    async def withhold(username: str) -> KeyBundle | None:
        bundle = await original_fetch(username)
        return None if bundle is None else dataclasses.replace(bundle, one_time_prekey=None)

    relay.store.fetch_bundle = withhold  # type: ignore[method-assign]
    bodies = await _captured_bodies(relay, "carol", "bob", secure(carol, bob))
    start = next(b for b in bodies if isinstance(P.decode_outer(b), P.PrekeyEnvelope))
    outer = P.decode_outer(start)
    assert isinstance(outer, P.PrekeyEnvelope)
    assert InitialMessage.from_bytes(outer.initial).one_time_prekey_id is None
    await carol.send_text("bob", "first")
    assert (await wait_for(bob, MessageReceived)).text == "first"

    await _inject(relay, "bob", "carol", "replayed-start", start)
    await carol.send_text("bob", "after the replay")
    assert (await wait_for(bob, MessageReceived, timeout=5)).text == "after the replay"
    await bob.send_text("carol", "and back")
    assert (await wait_for(carol, MessageReceived, timeout=5)).text == "and back"
    await bob.settle()
    assert not [e for e in drain(bob) if isinstance(e, ErrorRaised | MessageReceived)]
    assert [m.record.text for m in bob.history("carol")].count("first") == 1


async def _captured_bodies(
    relay: RelayServer, sender: str, recipient: str, action: Awaitable[object]
) -> list[bytes]:
    """Runs `action` while the relay keeps a copy of every envelope sender -> recipient."""
    bodies: list[bytes] = []
    original = relay.store.commit_batch

    async def spy(envelopes, acks, acknowledged=()):  # type: ignore[no-untyped-def]
        seen = [*envelopes, *acknowledged]
        bodies.extend(e.body for e in seen if e.sender == sender and e.recipient == recipient)
        return await original(envelopes, acks, acknowledged)

    relay.store.commit_batch = spy  # type: ignore[method-assign]
    try:
        await action
    finally:
        relay.store.commit_batch = original  # type: ignore[method-assign]
    return bodies


async def test_forged_far_ahead_header_shows_stuck_until_a_real_message_opens(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """The skip limit is checked before authentication, so a relay can fake a stuck session;
    the next real message clears it."""
    from securechat.client import payloads as P
    from securechat.client.events import ConversationChanged, ConversationState
    from securechat.crypto.ratchet import MAX_SKIP, MessageHeader, RatchetMessage, RatchetState

    alice, bob, _ = trio
    outer = P.decode_outer(await _captured_body(relay, alice, bob))
    assert isinstance(outer, P.RatchetEnvelope)
    real = RatchetMessage.from_bytes(outer.message)
    # Headers travel in clear: the relay knows Alice's latest ratchet key and counter.
    assert bob.vault is not None
    latest = RatchetState.from_bytes(bob.vault.get("session:alice") or b"")
    assert latest.remote_public is not None
    header = MessageHeader(latest.remote_public, 0, latest.recv_n + MAX_SKIP + 5)
    forged = RatchetMessage(header, real.nonce, real.ciphertext).to_bytes()
    await _inject(relay, "bob", "alice", "far-ahead", P.encode(P.RatchetEnvelope(message=forged)))
    await wait_for(bob, ConversationChanged, peer="alice", state=ConversationState.JAMMED)
    assert bob.conversation_state("alice") == ConversationState.JAMMED
    await alice.send_text("bob", "not stuck")
    assert (await wait_for(bob, MessageReceived)).text == "not stuck"
    assert bob.conversation_state("alice") == ConversationState.ACTIVE
