"""The PQXDH-style handshake, including what a hostile relay can try at session start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securechat.crypto import (
    AuthenticationFailed,
    DuplicateMessage,
    IdentityKeyMismatch,
    IdentityKeyPair,
    InitialMessage,
    InvalidKeyMaterial,
    InvalidSignature,
    PrekeyBundle,
    PrekeySecrets,
    decrypt,
    encrypt,
    generate_kem_prekey,
    generate_one_time_kem_prekeys,
    generate_signed_prekey,
    initiate,
    respond,
)
from securechat.crypto.prekeys import ONE_TIME_KEM_FIRST_ID
from tests.crypto.helpers import publish

Prekeys = tuple[PrekeySecrets, PrekeyBundle]


def test_both_sides_agree(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """Initiator and responder derive the same session and the first message decrypts."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", bob.public, bundle)
    initial = InitialMessage.from_bytes(started.initial.to_bytes())
    accepted = respond(bob, "bob", "alice", alice.public, secrets, initial)
    assert started.state.session_id == accepted.state.session_id
    assert not started.newly_pinned and not accepted.newly_pinned
    _, message = encrypt(started.state, b"hi", "alice", "bob")
    _, plaintext = decrypt(accepted.state, message, "alice", "bob")
    assert plaintext == b"hi"


def test_one_time_prekey_is_consumed(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """respond returns the store without the one-time prekey it used."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    assert started.initial.one_time_prekey_id == 1
    assert [k.prekey_id for k in accepted.secrets.one_time] == [2, 3]


def test_replayed_session_start_refused(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """Replaying an initial message after its one-time prekey was used raises DuplicateMessage."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    with pytest.raises(DuplicateMessage):
        respond(bob, "bob", "alice", None, accepted.secrets, started.initial)


def test_without_one_time_prekey(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """When the relay has run out of one-time prekeys the handshake still works (no DH4)."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, replace(bundle, one_time_prekey=None))
    assert started.initial.one_time_prekey_id is None
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    assert accepted.secrets == secrets
    _, message = encrypt(started.state, b"no opk", "alice", "bob")
    assert decrypt(accepted.state, message, "alice", "bob")[1] == b"no opk"


def test_tofu_reports_identity_to_pin(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """With nothing pinned, both results carry the peer identity the caller must pin."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    assert started.newly_pinned and started.peer_identity == bob.public
    assert accepted.newly_pinned and accepted.peer_identity == alice.public


def test_substituted_identity_vs_pin(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair
) -> None:
    """A relay serving Mallory's (validly self-signed) bundle for bob hits the pin."""
    _, fake = publish(mallory)
    with pytest.raises(IdentityKeyMismatch) as caught:
        initiate(alice, "alice", "bob", bob.public, fake)
    assert caught.value.pinned_fingerprint == bob.public.fingerprint_hex()
    assert caught.value.offered_fingerprint == mallory.public.fingerprint_hex()


def test_substituted_signed_prekey(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """Bob's identity with a signed prekey signed by Mallory fails the signature check."""
    _, bundle = bob_prekeys
    _, forged = generate_signed_prekey(mallory, 1, created_at=1_700_000_000)
    with pytest.raises(InvalidSignature):
        initiate(alice, "alice", "bob", bob.public, replace(bundle, signed_prekey=forged))
    with pytest.raises(InvalidSignature):
        initiate(alice, "alice", "bob", None, replace(bundle, signed_prekey=forged))


def test_substituted_kem_prekey(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """A post-quantum prekey not signed by Bob is refused (no PQ downgrade by the relay)."""
    _, bundle = bob_prekeys
    _, forged = generate_kem_prekey(mallory, 1)
    with pytest.raises(InvalidSignature):
        initiate(alice, "alice", "bob", bob.public, replace(bundle, kem_prekey=forged))


def test_substituted_identity_dh(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """An identity agreement key not signed by Bob is refused."""
    _, bundle = bob_prekeys
    with pytest.raises(InvalidSignature):
        initiate(
            alice,
            "alice",
            "bob",
            bob.public,
            replace(bundle, identity_dh=mallory.signed_dh_public()),
        )


def test_responder_checks_initiator_pin(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """Mallory starting a session as "alice" is caught by Bob's pin for alice."""
    secrets, bundle = bob_prekeys
    started = initiate(mallory, "alice", "bob", None, bundle)
    with pytest.raises(IdentityKeyMismatch):
        respond(bob, "bob", "alice", alice.public, secrets, started.initial)


def test_responder_checks_initiator_dh_signature(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """Alice's identity paired with Mallory's agreement key is refused."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    forged = replace(started.initial, identity_dh=mallory.signed_dh_public())
    with pytest.raises(InvalidSignature):
        respond(bob, "bob", "alice", alice.public, secrets, forged)


def test_rewritten_sender_at_session_start(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """If the relay claims the session came from "carol", the keys differ and nothing opens."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "carol", None, secrets, started.initial)
    _, message = encrypt(started.state, b"hi", "alice", "bob")
    with pytest.raises(AuthenticationFailed):
        decrypt(accepted.state, message, "carol", "bob")


def test_expired_signed_prekey(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """A session request for a signed prekey the store no longer holds is refused clearly."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    with pytest.raises(InvalidKeyMaterial):
        respond(bob, "bob", "alice", None, replace(secrets, signed=()), started.initial)


def test_initial_message_truncated(alice: IdentityKeyPair, bob_prekeys: Prekeys) -> None:
    """A truncated initial message is malformed key material, not a crash."""
    _, bundle = bob_prekeys
    data = initiate(alice, "alice", "bob", None, bundle).initial.to_bytes()
    for cut in (0, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidKeyMaterial):
            InitialMessage.from_bytes(data[:cut])


def test_one_time_kem_prekey_is_used_once(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Prekeys
) -> None:
    """A bundle carrying a one-time ML-KEM prekey in place of the last-resort one works once;
    the store loses it, so a replay of that start is refused as a duplicate."""
    secrets, bundle = bob_prekeys
    kem_secrets, kem_publics = generate_one_time_kem_prekeys(bob, ONE_TIME_KEM_FIRST_ID, 2)
    secrets = secrets.with_one_time_kem_prekeys(kem_secrets)
    served = replace(bundle, one_time_prekey=None, kem_prekey=kem_publics[0])
    started = initiate(alice, "alice", "bob", None, served)
    assert started.initial.kem_prekey_id == ONE_TIME_KEM_FIRST_ID
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    _, message = encrypt(started.state, b"hi", "alice", "bob")
    assert decrypt(accepted.state, message, "alice", "bob")[1] == b"hi"
    assert [k.prekey_id for k in accepted.secrets.one_time_kem] == [ONE_TIME_KEM_FIRST_ID + 1]
    assert accepted.secrets.kem == secrets.kem, "the last-resort prekey stays"
    with pytest.raises(DuplicateMessage):
        respond(bob, "bob", "alice", None, accepted.secrets, started.initial)
