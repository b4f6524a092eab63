"""A relay that lies, seen by two real clients: every trick is caught and shown."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import pytest

from securechat.client import payloads as P
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    FileOffered,
    KeyChanged,
    KeyKept,
    MessageReceived,
    MessagesMissing,
)
from securechat.client.transfers import TransferError
from securechat.crypto.filestream import CHUNK_SIZE
from securechat.errors import ConnectionLost, ProtocolError, SessionError
from securechat.protocol import frames as F
from securechat.protocol.codec import encode_str
from securechat.protocol.padding import is_bucket
from securechat.server.app import RelayServer
from securechat.server.store import KeyBundle, NewEnvelope
from tests.client.helpers import clients, drain, secure, swap_bundle_once, wait_for


@pytest.fixture
async def trio(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChatClient, ChatClient, ChatClient]]:
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await secure(alice, bob)
        yield alice, bob, carol


async def _captured_body(relay: RelayServer, alice: ChatClient, bob: ChatClient) -> bytes:
    """Alice sends one message; the relay keeps a copy of its ciphertext on the way."""
    return (
        await _captured_bodies(
            relay, "alice", "bob", _sent_and_read(alice, bob, "pay carol 10 euros")
        )
    )[0]


async def _sent_and_read(alice: ChatClient, bob: ChatClient, text: str) -> None:
    await alice.send_text("bob", text)
    assert (await wait_for(bob, MessageReceived)).text == text


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
    numbers = alice.verify("bob")
    assert numbers.pinned == before.pinned and numbers.offered not in (None, before.pinned)
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
    original = relay.relay.submit
    # Taken as they arrive: one acknowledged before its commit is never written.
    seen = _record_bodies(relay)
    try:
        await action
    finally:
        relay.relay.submit = original  # type: ignore[method-assign]
    return [body for s, r, body in seen if (s, r) == (sender, recipient)]


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


async def _forged_key_change(relay: RelayServer, alice: ChatClient) -> tuple[str, str]:
    """Carol's bundle served as Bob's: Alice sees a key change; returns both fingerprints."""
    swap_bundle_once(relay, victim="bob", attacker="carol")
    with pytest.raises(SessionError, match="different key"):
        await alice.talk("bob")
    event = await wait_for(alice, KeyChanged, peer="bob")
    assert event.pinned_fingerprint != event.offered_fingerprint
    return event.pinned_fingerprint, event.offered_fingerprint


def _warnings(client: ChatClient, peer: str) -> list[str]:
    return [m.record.text for m in client.history(peer) if m.record.kind == "system"]


async def test_verify_shows_both_numbers_during_a_key_change(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """While a change is pending, `verify` labels the pinned number and the offered one."""
    alice, bob, _ = trio
    before = alice.verify("bob")
    await _forged_key_change(relay, alice)
    numbers = alice.verify("bob")
    assert numbers.pinned == before.pinned == bob.verify("alice").pinned
    assert numbers.offered is not None and numbers.offered != numbers.pinned
    text = numbers.describe()
    assert f"PINNED key (the one you trusted before):\n{numbers.pinned}" in text
    assert f"NEW key offered for bob (not trusted):\n{numbers.offered}" in text


async def test_forged_key_change_can_be_rejected_and_the_session_goes_on(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """`reject` keeps the pinned key: the old session works and the forgery is on record."""
    alice, bob, _ = trio
    pinned, forged = await _forged_key_change(relay, alice)
    assert alice.reject("bob") == pinned
    kept = await wait_for(alice, KeyKept, peer="bob")
    assert (kept.rejected_fingerprint, kept.by_peer) == (forged, False)
    assert alice.conversation_state("bob") == ConversationState.ACTIVE
    assert alice.verify("bob").offered is None
    [warning] = _warnings(alice, "bob")
    assert f"kept bob's pinned key {pinned[:19]} and" in warning
    assert f"key {forged[:19]} offered" in warning
    await alice.send_text("bob", "still you?")
    assert (await wait_for(bob, MessageReceived)).text == "still you?"
    with pytest.raises(SessionError, match="no new key to reject"):
        alice.reject("bob")


async def test_peer_resharing_the_pinned_key_clears_a_forged_change(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """After one swapped bundle, Bob's real key again ends the alarm without trusting Carol's."""
    alice, bob, _ = trio
    pinned, forged = await _forged_key_change(relay, alice)
    await bob.sharekey("alice")
    kept = await wait_for(alice, KeyKept, peer="bob")
    assert (kept.pinned_fingerprint, kept.rejected_fingerprint, kept.by_peer) == (
        pinned,
        forged,
        True,
    )
    assert alice.conversation_state("bob") == ConversationState.ACTIVE
    assert bob.identity is not None and alice.pinned_key("bob") == bob.identity.public
    [warning] = _warnings(alice, "bob")
    assert "shared the pinned key" in warning and forged[:16] in warning
    await alice.talk("bob")
    await wait_for(alice, ConversationChanged, peer="bob", state=ConversationState.ACTIVE)
    await alice.send_text("bob", "new session")
    assert (await wait_for(bob, MessageReceived)).text == "new session"


def _under_reporting_relay(relay: RelayServer) -> dict[tuple[str, int], set[bytes]]:
    """Says no chunk of any upload is stored and takes any chunk again; records every chunk.

    Returns what it received: (blob id, index) -> the distinct chunk bodies.
    """
    files = relay.files
    received: dict[tuple[str, int], set[bytes]] = {}
    real_chunk, real_status = files.chunk, files.status

    async def status(user: str, frame: F.FileStatus) -> F.FileReady:
        ready = await real_status(user, frame)
        return F.FileReady(frame.rid, frame.file_id, 0, ready.size, False)

    async def chunk(owner: str, frame: F.FileChunk) -> F.FileReady:
        received.setdefault((frame.file_id, frame.index), set()).add(bytes(frame.data))
        try:
            return await real_chunk(owner, frame)
        except ProtocolError:  # already stored: the lie goes on
            record = await relay.store.get_file(frame.file_id)
            assert record is not None
            last = -(-record.size // (CHUNK_SIZE + 16)) - 1
            return F.FileReady(
                frame.rid, frame.file_id, frame.index + 1, record.size, frame.index == last
            )

    files.chunk, files.status = chunk, status  # type: ignore[method-assign]
    return received


async def _interrupted_upload(alice: ChatClient, source: Path) -> None:
    """Alice's upload loses the relay after a few chunks; she resumes only when told to."""
    alice.relay.reconnect = False
    real: Callable[..., AsyncIterator[F.ServerFrame]] = alice.relay.pipeline

    async def cut(builds: Iterable[Callable[[int], F.ClientFrame]], window: int = 8):  # type: ignore[no-untyped-def]
        answers = 0
        async for answer in real(builds, window):
            yield answer
            answers += 1
            if answers == 3:
                raise ConnectionLost("the relay went away")

    alice.relay.pipeline = cut  # type: ignore[method-assign]
    with pytest.raises(TransferError, match="interrupted"):
        await alice.send_file("bob", source)
    alice.relay.pipeline = real  # type: ignore[method-assign]


async def test_under_reported_upload_of_an_edited_file_reuses_no_nonce(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient], tmp_path: Path
) -> None:
    """The relay claims it has nothing after the file was edited in place: the resume
    stops before sealing other bytes under a used chunk nonce, and frees the blob."""
    alice, bob, _ = trio
    source = tmp_path / "draft.bin"
    source.write_bytes(os.urandom(40 * CHUNK_SIZE))
    await _interrupted_upload(alice, source)
    [pending] = alice.files.pending()
    received = _under_reporting_relay(relay)
    with open(source, "r+b") as handle:
        handle.write(b"edited in place")
    with pytest.raises(TransferError, match="changed"):
        await alice.files.finish_upload(pending)
    assert all(len(bodies) == 1 for bodies in received.values())
    assert alice.files.pending() == []
    assert await relay.store.files_of("alice") == []
    assert not [e for e in drain(bob) if isinstance(e, FileOffered)]


async def test_under_reported_upload_of_an_unchanged_file_resends_the_same_bytes(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient], tmp_path: Path
) -> None:
    """Resealing an unchanged file gives identical chunks, so the lie costs only bandwidth."""
    alice, bob, _ = trio
    source = tmp_path / "same.bin"
    source.write_bytes(os.urandom(40 * CHUNK_SIZE))
    await _interrupted_upload(alice, source)
    [pending] = alice.files.pending()
    received = _under_reporting_relay(relay)
    await alice.files.finish_upload(pending)
    assert (pending.blob_id, 0) in received
    assert all(len(bodies) == 1 for bodies in received.values())
    offer = await wait_for(bob, FileOffered, file_id=pending.blob_id)
    saved = await bob.download(offer.file_id, tmp_path / "dl")
    assert saved.read_bytes() == source.read_bytes()


def _record_bodies(relay: RelayServer) -> list[tuple[str, str, bytes]]:
    """Every (sender, recipient, body) the relay is asked to carry from now on."""
    seen: list[tuple[str, str, bytes]] = []
    original = relay.relay.submit

    async def spy(outlet, sender: str, frame: F.Send) -> None:  # type: ignore[no-untyped-def]
        seen.append((sender, frame.to, frame.body))
        await original(outlet, sender, frame)

    relay.relay.submit = spy  # type: ignore[method-assign]
    return seen


async def test_envelopes_in_a_session_are_one_kind_in_a_few_sizes(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient], tmp_path: Path
) -> None:
    """Texts, receipts and file offers look alike to the relay: no tag, bucket sizes."""
    alice, bob, _ = trio
    bodies = _record_bodies(relay)
    await alice.send_text("bob", "ok, see you at 8")
    await wait_for(alice, DeliveryChanged, state=DeliveryState.DELIVERED)
    note = tmp_path / "notes.txt"
    note.write_bytes(b"bring the tent")
    blob_id = await alice.send_file("bob", note)
    await wait_for(bob, FileOffered, file_id=blob_id)
    await wait_for(alice, DeliveryChanged, state=DeliveryState.DELIVERED)
    await bob.send_text("alice", "long " * 400)
    await wait_for(alice, MessageReceived)
    await wait_for(bob, DeliveryChanged, state=DeliveryState.DELIVERED)
    kinds = {type(P.decode_outer(body)) for _, _, body in bodies}
    assert kinds == {P.RatchetEnvelope}
    assert all(body[0] == P.RATCHET_KIND for _, _, body in bodies)
    assert all(is_bucket(len(body)) for _, _, body in bodies)
    # The short text and both receipts, which were 115 and 127 bytes, now share a size.
    small = [len(body) for _, _, body in bodies if len(body) < 1000]
    assert small.count(256) >= 4
    assert len(bodies) == 6


async def test_a_relay_that_rewrites_times_does_not_set_the_displayed_time(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """The sender's authenticated time is shown; the relay's is only "received", and flagged."""
    alice, bob, _ = trio
    before = time.time()
    await alice.send_text("bob", "honest relay")
    honest = await wait_for(bob, MessageReceived)
    assert isinstance(honest, MessageReceived)
    assert not honest.clocks_disagree and abs(honest.received_ts - honest.ts) < 5
    three_days = 3 * 86400
    relay.relay.clock = lambda: time.time() - three_days
    await alice.send_text("bob", "sent just now")
    event = await wait_for(bob, MessageReceived)
    assert isinstance(event, MessageReceived)
    after = time.time()
    assert before <= event.ts <= after
    assert event.received_ts < before - three_days + 5
    assert event.clocks_disagree
    stored = bob.history("alice")[-1].record
    assert (stored.text, stored.ts, stored.received) == (
        "sent just now",
        event.ts,
        event.received_ts,
    )


def _drop(relay: RelayServer, sender: str, which: set[int]) -> list[str]:
    """The relay says `accepted` to `sender`'s n-th envelopes (from 1) and throws them away."""
    dropped: list[str] = []
    count = 0
    original = relay.relay.submit

    async def liar(outlet, who: str, frame: F.Send) -> None:  # type: ignore[no-untyped-def]
        nonlocal count
        if who == sender:
            count += 1
            if count in which:
                dropped.append(frame.eid)
                outlet.push(encode_str(F.Accepted(rid=frame.rid, eid=frame.eid)))
                return
        await original(outlet, who, frame)

    relay.relay.submit = liar  # type: ignore[method-assign]
    return dropped


def _quick_checks(*clients: ChatClient, retry_after: float, missing_after: float) -> None:
    for client in clients:
        client.delivery.retry_after, client.delivery.missing_after = retry_after, missing_after
        client.delivery.check_every = 0.05


async def test_a_dropped_message_is_reported_missing(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Message 2 of 3 never arrives (and is not sent again): Bob is told, once."""
    alice, bob, _ = trio
    _quick_checks(alice, bob, retry_after=3600, missing_after=0.5)
    _drop(relay, "alice", {2})
    for text in ("one", "two", "three"):
        await alice.send_text("bob", text)
    missing = await wait_for(bob, MessagesMissing, peer="alice")
    assert isinstance(missing, MessagesMissing)
    assert (missing.count, missing.text) == (1, "1 message from alice is missing")
    assert [m.record.text for m in bob.history("alice")] == ["one", "three"]
    await asyncio.sleep(0.3)
    assert not any(isinstance(event, MessagesMissing) for event in drain(bob))


async def test_a_dropped_message_is_sent_again_and_arrives(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Without a receipt Alice sends the same envelope again; Bob shows it, once, no alarm."""
    alice, bob, _ = trio
    _quick_checks(alice, bob, retry_after=0.3, missing_after=30)
    dropped = _drop(relay, "alice", {2})
    eids = [await alice.send_text("bob", text) for text in ("one", "two", "three")]
    assert dropped == [eids[1]]
    await wait_for(alice, DeliveryChanged, eid=eids[1], state=DeliveryState.DELIVERED)
    assert sorted(m.record.text for m in bob.history("alice")) == ["one", "three", "two"]
    assert not any(isinstance(event, MessagesMissing) for event in drain(bob))


async def test_a_dropped_receipt_is_answered_again(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Bob's receipt is dropped: Alice's resend is recognised, not shown twice, and confirmed."""
    alice, bob, _ = trio
    _quick_checks(alice, bob, retry_after=0.3, missing_after=30)
    dropped = _drop(relay, "bob", {1})
    eid = await alice.send_text("bob", "did you get this?")
    await wait_for(bob, MessageReceived)
    await wait_for(alice, DeliveryChanged, eid=eid, state=DeliveryState.DELIVERED)
    assert len(dropped) == 1
    assert [m.record.text for m in bob.history("alice")] == ["did you get this?"]


async def test_a_message_of_a_session_that_ended_is_not_sent_again(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """After a new session (`trust`), Bob could not open the old body: it is forgotten."""
    alice, bob, _ = trio
    _quick_checks(alice, bob, retry_after=3600, missing_after=3600)
    _drop(relay, "alice", {1})
    await alice.send_text("bob", "lost in the old session")
    assert alice.vault is not None and len(alice.vault.unconfirmed()) == 1
    alice.vault.delete("session:bob")
    bodies = _record_bodies(relay)
    alice.delivery.retry_after = 0.0
    await alice.delivery.retry_unconfirmed()
    assert alice.vault.unconfirmed() == [] and bodies == []


async def test_a_verified_mark_is_cleared_by_a_key_change(
    relay: RelayServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    """Marked after comparing numbers; any other key offered clears it, even if rejected."""
    alice, _, _ = trio
    assert not alice.is_verified("bob") and not alice.verify("bob").verified
    alice.mark_verified("bob")
    assert alice.is_verified("bob") and alice.verify("bob").verified
    await _forged_key_change(relay, alice)
    assert not alice.is_verified("bob")
    with pytest.raises(SessionError, match="keep the pinned key or accept"):
        alice.mark_verified("bob")
    alice.reject("bob")
    assert not alice.is_verified("bob")
    alice.mark_verified("bob")
    assert alice.is_verified("bob")
