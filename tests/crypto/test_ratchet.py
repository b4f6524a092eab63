"""The Double Ratchet: ordering, bounds, replay, tampering, secrecy and serialisation."""

from __future__ import annotations

import pytest

from securechat.crypto import (
    MAX_SKIP,
    AuthenticationFailed,
    DuplicateMessage,
    InvalidKeyMaterial,
    RatchetMessage,
    RatchetState,
    TooManySkippedMessages,
    UnsupportedVersion,
    decrypt,
    encrypt,
    primitives,
)
from securechat.crypto.ratchet import (
    MAX_SKIPPED_AGE,
    MAX_SKIPPED_KEYS,
    MAX_TRACKED_CHAINS,
    MessageHeader,
    expire_skipped,
    start_as_initiator,
    start_as_responder,
)
from tests.crypto.helpers import Session

A, B = "alice", "bob"


def send(
    state: RatchetState, count: int, sender: str = A, recipient: str = B
) -> tuple[RatchetState, list[RatchetMessage]]:
    messages = []
    for i in range(count):
        state, message = encrypt(state, f"{sender} {i}".encode(), sender, recipient)
        messages.append(message)
    return state, messages


def test_conversation(session: Session) -> None:
    """Alternating senders (a DH ratchet step each turn) keep decrypting."""
    a, b = session.alice, session.bob
    for turn in range(5):
        a, m = encrypt(a, b"ping %d" % turn, A, B)
        b, p = decrypt(b, m, A, B)
        assert p == b"ping %d" % turn
        b, m = encrypt(b, b"pong %d" % turn, B, A)
        a, p = decrypt(a, m, B, A)
        assert p == b"pong %d" % turn


def test_out_of_order_within_chain(session: Session) -> None:
    """Messages of one chain may arrive in any order and each opens once."""
    _, messages = send(session.alice, 5)
    b = session.bob
    for i in (3, 0, 4, 2, 1):
        b, p = decrypt(b, messages[i], A, B)
        assert p == f"alice {i}".encode()
    assert not b.skipped, "used skipped keys are deleted"


def test_out_of_order_across_ratchet_steps(session: Session) -> None:
    """A late message from a previous chain still opens after the DH ratchet moved on."""
    a, early = send(session.alice, 3)
    b, p = decrypt(session.bob, early[2], A, B)
    b, reply = encrypt(b, b"reply", B, A)
    a, _ = decrypt(a, reply, B, A)
    a, later = send(a, 1)
    b, p = decrypt(b, later[0], A, B)
    assert p == b"alice 0"
    for i in (0, 1):
        b, p = decrypt(b, early[i], A, B)
        assert p == f"alice {i}".encode()


def test_max_skip_boundary(session: Session) -> None:
    """Skipping exactly MAX_SKIP keys is allowed; one more is refused."""
    _, messages = send(session.alice, MAX_SKIP + 2)
    with pytest.raises(TooManySkippedMessages):
        decrypt(session.bob, messages[-1], A, B)
    b, _ = decrypt(session.bob, messages[-2], A, B)
    assert len(b.skipped) == MAX_SKIP


def test_replay_current_chain(session: Session) -> None:
    """Decrypting the same message twice raises DuplicateMessage."""
    _, (m,) = send(session.alice, 1)
    b, _ = decrypt(session.bob, m, A, B)
    with pytest.raises(DuplicateMessage):
        decrypt(b, m, A, B)


def test_replay_of_skipped_then_used_key(session: Session) -> None:
    """A late message opens once from the skipped store; its replay is a duplicate."""
    _, (m0, m1) = send(session.alice, 2)
    b, _ = decrypt(session.bob, m1, A, B)
    b, _ = decrypt(b, m0, A, B)
    with pytest.raises(DuplicateMessage):
        decrypt(b, m0, A, B)


def test_replay_from_finished_chain(session: Session) -> None:
    """After the ratchet moves on, an old chain's message is still recognised as a replay."""
    a, (m,) = send(session.alice, 1)
    b, _ = decrypt(session.bob, m, A, B)
    b, reply = encrypt(b, b"r", B, A)
    a, _ = decrypt(a, reply, B, A)
    _, (m2,) = send(a, 1)
    b, _ = decrypt(b, m2, A, B)
    with pytest.raises(DuplicateMessage):
        decrypt(b, m, A, B)


def test_tampering_detected(session: Session) -> None:
    """Any flipped bit in ciphertext, nonce or header fails authentication."""
    _, (m,) = send(session.alice, 1)
    data = m.to_bytes()
    for position in (len(data) - 1, 2 + 40 + 1, 2 + 33, 2):
        tampered = bytearray(data)
        tampered[position] ^= 1
        with pytest.raises(AuthenticationFailed):
            decrypt(session.bob, RatchetMessage.from_bytes(bytes(tampered)), A, B)


def test_rewritten_sender(session: Session) -> None:
    """A relay cannot relabel sender or recipient: both are in the associated data."""
    _, (m,) = send(session.alice, 1)
    for sender, recipient in ((B, A), ("carol", B), (A, "carol")):
        with pytest.raises(AuthenticationFailed):
            decrypt(session.bob, m, sender, recipient)


def test_reflection(session: Session) -> None:
    """A message bounced back to its own sender does not open there."""
    a, (m,) = send(session.alice, 1)
    with pytest.raises(AuthenticationFailed):
        decrypt(a, m, B, A)
    with pytest.raises(AuthenticationFailed):
        decrypt(a, m, A, B)


def test_failed_decrypt_leaves_state_alone(session: Session) -> None:
    """decrypt is pure: the caller's state is untouched and still works after a failure."""
    _, (m,) = send(session.alice, 1)
    before = session.bob.to_bytes()
    with pytest.raises(AuthenticationFailed):
        decrypt(session.bob, m, "carol", B)
    assert session.bob.to_bytes() == before
    assert decrypt(session.bob, m, A, B)[1] == b"alice 0"


def test_damaged_message_bytes() -> None:
    """Truncated or foreign bytes are refused as unauthenticated, not with IndexError."""
    for data in (b"", b"\x0a", b"\x0a\x01" + bytes(40), b"\x01\x01" + bytes(100)):
        with pytest.raises(AuthenticationFailed):
            RatchetMessage.from_bytes(data)
    with pytest.raises(UnsupportedVersion):
        RatchetMessage.from_bytes(b"\x0a\x07" + bytes(100))


def test_skipped_store_is_bounded(session: Session) -> None:
    """Past MAX_SKIPPED_KEYS the oldest skipped keys are evicted (documented bound)."""
    a, b = session.alice, session.bob
    first_skipped = None
    rounds = MAX_SKIPPED_KEYS // MAX_SKIP + 1
    for _ in range(rounds):
        a, messages = send(a, MAX_SKIP + 1)
        first_skipped = first_skipped or messages[0]
        b, _ = decrypt(b, messages[-1], A, B)
        b, reply = encrypt(b, b"r", B, A)
        a, _ = decrypt(a, reply, B, A)
    assert len(b.skipped) == MAX_SKIPPED_KEYS
    assert first_skipped is not None
    with pytest.raises(DuplicateMessage):
        decrypt(b, first_skipped, A, B)


def test_key_confirmation(session: Session) -> None:
    """Alice is confirmed by Bob's reply; Bob only once Alice answers that reply."""
    a, b = session.alice, session.bob
    assert not a.confirmed and not b.confirmed
    a, (m,) = send(a, 1)
    b, _ = decrypt(b, m, A, B)
    assert not b.confirmed, "more messages on Alice's first chain prove nothing new"
    b, reply = encrypt(b, b"r", B, A)
    a, _ = decrypt(a, reply, B, A)
    assert a.confirmed
    a, (answer,) = send(a, 1)
    b, _ = decrypt(b, answer, A, B)
    assert b.confirmed


def test_responder_cannot_send_first() -> None:
    """Before the initiator's first message there is no sending chain to use."""
    private, _ = primitives.x25519_generate()
    state = start_as_responder(bytes(32), bytes(32), private)
    with pytest.raises(InvalidKeyMaterial):
        encrypt(state, b"x", B, A)


def test_message_claiming_signed_prekey_as_ratchet_key() -> None:
    """The initiator never receives on the responder's signed prekey; such a message is forged."""
    _, public = primitives.x25519_generate()
    a = start_as_initiator(bytes(32), bytes(32), public)
    fake = RatchetMessage(MessageHeader(public, 0, 0), bytes(12), bytes(32))
    with pytest.raises(AuthenticationFailed):
        decrypt(a, fake, B, A)


def test_state_round_trip(session: Session) -> None:
    """A serialised state (with skipped keys) restores equal and keeps working."""
    _, messages = send(session.alice, 3)
    b, _ = decrypt(session.bob, messages[2], A, B)
    restored = RatchetState.from_bytes(b.to_bytes())
    assert restored == b
    assert decrypt(restored, messages[0], A, B)[1] == b"alice 0"


def test_state_malformed(session: Session) -> None:
    """Damaged or future state bytes raise specific errors."""
    data = session.bob.to_bytes()
    with pytest.raises(InvalidKeyMaterial):
        RatchetState.from_bytes(data[:-3])
    with pytest.raises(UnsupportedVersion):
        RatchetState.from_bytes(data[:1] + b"\x03" + data[2:])


def test_forward_secrecy(session: Session) -> None:
    """A recorded message cannot be read with the state serialised after it was consumed."""
    a, (recorded,) = send(session.alice, 1)
    b, _ = decrypt(session.bob, recorded, A, B)
    stolen = RatchetState.from_bytes(b.to_bytes())
    with pytest.raises(DuplicateMessage):
        decrypt(stolen, recorded, A, B)
    assert not stolen.skipped, "no key for the consumed message is left behind"
    # Even after the session moves on, the stolen copy learns nothing about the old message.
    b, reply = encrypt(b, b"r", B, A)
    a, _ = decrypt(a, reply, B, A)
    stolen_later = RatchetState.from_bytes(b.to_bytes())
    with pytest.raises(DuplicateMessage):
        decrypt(stolen_later, recorded, A, B)


def test_post_compromise_healing(session: Session) -> None:
    """A thief with Bob's state reads the current chain but loses access after a round trip."""
    a, b = session.alice, session.bob
    thief = RatchetState.from_bytes(b.to_bytes())
    a, (m1,) = send(a, 1)
    thief, p = decrypt(thief, m1, A, B)
    assert p == b"alice 0", "compromise is real: the current chain is exposed"
    b, _ = decrypt(b, m1, A, B)
    # Round trip: Bob's fresh ratchet key, then Alice's answer to it.
    b, r1 = encrypt(b, b"r1", B, A)
    a, _ = decrypt(a, r1, B, A)
    a, (m2,) = send(a, 1)
    b, _ = decrypt(b, m2, A, B)
    b, r2 = encrypt(b, b"r2", B, A)
    a, _ = decrypt(a, r2, B, A)
    a, (m3,) = send(a, 1)
    b, p = decrypt(b, m3, A, B)
    assert p == b"alice 0"
    # m2 answers Bob's ratchet key, whose private half the thief copied...
    thief, _ = decrypt(thief, m2, A, B)
    # ...but m3 answers Bob's next key, generated after the theft: the thief is locked out.
    with pytest.raises(AuthenticationFailed):
        decrypt(thief, m3, A, B)


def _skip_then_step(
    session: Session, finished_at: int
) -> tuple[RatchetState, RatchetState, list[RatchetMessage]]:
    """Bob skips Alice's first two messages, then her chain finishes at `finished_at`."""
    a, early = send(session.alice, 3)
    b, _ = decrypt(session.bob, early[2], A, B, now=finished_at - 5)
    b, reply = encrypt(b, b"reply", B, A)
    a, _ = decrypt(a, reply, B, A)
    a, (later,) = send(a, 1)
    b, _ = decrypt(b, later, A, B, now=finished_at)
    assert len(b.skipped) == 2
    return a, b, early


def test_skipped_keys_expire_a_week_after_their_chain_finished(session: Session) -> None:
    """The spec's advice: a key kept for a message that never came is deleted after a while."""
    _, b, early = _skip_then_step(session, 1_000_000)
    assert expire_skipped(b, 1_000_000 + MAX_SKIPPED_AGE) is b
    expired = expire_skipped(b, 1_000_001 + MAX_SKIPPED_AGE)
    assert not expired.skipped
    with pytest.raises(DuplicateMessage):
        decrypt(expired, early[0], A, B)
    assert decrypt(b, early[0], A, B, now=1_000_000 + MAX_SKIPPED_AGE)[1] == b"alice 0"


def test_decrypt_with_the_time_expires_old_skipped_keys(session: Session) -> None:
    """Expiry happens on the way: the next message after a week leaves no old key behind."""
    a, b, _ = _skip_then_step(session, 1_000_000)
    restored = RatchetState.from_bytes(b.to_bytes())
    assert restored.finished_at == b.finished_at and restored.skipped == b.skipped
    _, (next_one,) = send(a, 1)
    b, _ = decrypt(restored, next_one, A, B, now=1_000_001 + MAX_SKIPPED_AGE)
    assert not b.skipped


def test_skipped_keys_of_the_current_chain_do_not_expire(session: Session) -> None:
    """Until the peer moves on, a gap in the chain it still sends on may yet be filled."""
    _, messages = send(session.alice, 3)
    b, _ = decrypt(session.bob, messages[2], A, B, now=0)
    assert expire_skipped(b, 10 * MAX_SKIPPED_AGE) is b


def test_skipped_keys_go_after_max_tracked_chains_dh_steps(session: Session) -> None:
    """Without a clock, the number of DH ratchet steps bounds how long a key is kept."""
    a, b, _ = _skip_then_step(session, 5)
    steps = 0
    while b.skipped:
        b, reply = encrypt(b, b"r", B, A)
        a, _ = decrypt(a, reply, B, A)
        a, (m,) = send(a, 1)
        b, _ = decrypt(b, m, A, B)
        steps += 1
        assert steps <= MAX_TRACKED_CHAINS
    assert steps >= MAX_TRACKED_CHAINS - 2


def test_version_1_state_keeps_its_skipped_keys_for_a_week_from_the_upgrade(
    session: Session,
) -> None:
    """A stored state of today (no finishing times) loads; its old keys get the full week."""
    _, b, _ = _skip_then_step(session, 1_000_000)
    old = RatchetState.from_bytes(_as_version_1(b))
    assert old.skipped == b.skipped and not old.finished_at
    upgraded = expire_skipped(old, 5_000_000)
    assert len(upgraded.skipped) == 2
    assert not expire_skipped(upgraded, 5_000_001 + MAX_SKIPPED_AGE).skipped


def _as_version_1(state: RatchetState) -> bytes:
    """The bytes today's clients stored: version 1 has no finishing time per chain."""
    data = state.to_bytes()
    count = len(state.finished_chains)
    start = len(data) - count * (32 + 4 + 8)
    chains = [data[start + i * 44 : start + i * 44 + 36] for i in range(count)]
    return data[:1] + b"\x01" + data[2:start] + b"".join(chains)
