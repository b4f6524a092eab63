"""Prekeys: signatures, blob round trips, the private store and rotation decisions."""

from __future__ import annotations

import pytest

from securechat.crypto import (
    DuplicateMessage,
    IdentityKeyPair,
    InvalidKeyMaterial,
    InvalidSignature,
    KemPrekeyPublic,
    OneTimePrekeyPublic,
    PrekeyBundle,
    PrekeySecrets,
    SignedPrekeyPublic,
    generate_kem_prekey,
    generate_one_time_kem_prekeys,
    generate_one_time_prekeys,
    generate_signed_prekey,
    needs_replenish,
    needs_rotation,
)
from securechat.crypto.prekeys import ONE_TIME_KEM_FIRST_ID


def test_signed_prekey_signature(alice: IdentityKeyPair, mallory: IdentityKeyPair) -> None:
    """A signed prekey verifies under its owner only, and its id and date are signed too."""
    _, public = generate_signed_prekey(alice, 7, created_at=100)
    public = SignedPrekeyPublic.from_bytes(public.to_bytes())
    public.verify(alice.public)
    with pytest.raises(InvalidSignature):
        public.verify(mallory.public)
    with pytest.raises(InvalidSignature):
        SignedPrekeyPublic(8, public.public, 100, public.signature).verify(alice.public)
    with pytest.raises(InvalidSignature):
        SignedPrekeyPublic(7, public.public, 101, public.signature).verify(alice.public)


def test_kem_prekey_signature(alice: IdentityKeyPair, mallory: IdentityKeyPair) -> None:
    """The ML-KEM prekey is signed by the identity; another key's signature fails."""
    _, public = generate_kem_prekey(alice, 3)
    public = KemPrekeyPublic.from_bytes(public.to_bytes())
    public.verify(alice.public)
    with pytest.raises(InvalidSignature):
        public.verify(mallory.public)


def test_one_time_prekeys_have_sequential_ids() -> None:
    """generate_one_time_prekeys numbers keys from start_id and pairs secrets with publics."""
    secrets, publics = generate_one_time_prekeys(10, 3)
    assert [s.prekey_id for s in secrets] == [p.prekey_id for p in publics] == [10, 11, 12]
    assert OneTimePrekeyPublic.from_bytes(publics[0].to_bytes()) == publics[0]


def test_bundle_round_trip(bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]) -> None:
    """A bundle survives serialisation, with and without a one-time prekey."""
    _, bundle = bob_prekeys
    assert PrekeyBundle.from_bytes(bundle.to_bytes()) == bundle
    bare = PrekeyBundle(
        bundle.identity_der, bundle.identity_dh, bundle.signed_prekey, bundle.kem_prekey, None
    )
    assert PrekeyBundle.from_bytes(bare.to_bytes()) == bare


def test_bundle_from_blobs(bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]) -> None:
    """The relay stores blobs separately; from_blobs reassembles the same bundle."""
    _, b = bob_prekeys
    assert b.one_time_prekey is not None
    rebuilt = PrekeyBundle.from_blobs(
        b.identity_der,
        b.identity_dh.to_bytes(),
        b.signed_prekey.to_bytes(),
        b.kem_prekey.to_bytes(),
        b.one_time_prekey.to_bytes(),
    )
    assert rebuilt == b


def test_blob_kinds_are_not_interchangeable(
    bob_prekeys: tuple[PrekeySecrets, PrekeyBundle],
) -> None:
    """A KEM prekey blob handed in as a signed prekey is refused, not misparsed."""
    _, bundle = bob_prekeys
    with pytest.raises(InvalidKeyMaterial):
        SignedPrekeyPublic.from_bytes(bundle.kem_prekey.to_bytes())


def test_secrets_round_trip(bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]) -> None:
    """The private store serialises every key and the id counter."""
    secrets, _ = bob_prekeys
    restored = PrekeySecrets.from_bytes(secrets.to_bytes())
    assert restored == secrets
    assert restored.next_one_time_id == 4


def test_one_time_removal_and_replay(bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]) -> None:
    """A consumed one-time prekey is gone; asking for it again is reported as a replay."""
    secrets, _ = bob_prekeys
    assert secrets.one_time_prekey(1).prekey_id == 1
    remaining = secrets.without_one_time_prekey(1)
    with pytest.raises(DuplicateMessage):
        remaining.one_time_prekey(1)
    assert remaining.next_one_time_id == secrets.next_one_time_id


def test_rotation_keeps_previous_prekeys(alice: IdentityKeyPair) -> None:
    """After rotation the previous signed prekey stays for in-flight handshakes; older go."""
    store = PrekeySecrets()
    for prekey_id in (1, 2, 3):
        secret, _ = generate_signed_prekey(alice, prekey_id, created_at=prekey_id)
        store = store.with_signed_prekey(secret)
    assert [s.prekey_id for s in store.signed] == [2, 3]
    assert store.next_signed_id == 4
    assert store.latest_signed is not None and store.latest_signed.created_at == 3
    kem_secret, _ = generate_kem_prekey(alice, store.next_kem_id)
    assert store.with_kem_prekey(kem_secret).next_kem_id == 2
    with pytest.raises(InvalidKeyMaterial):
        store.signed_prekey(1)


def test_rotation_and_replenish_decisions() -> None:
    """The pure policy functions say when to rotate and when to upload more prekeys."""
    assert not needs_rotation(created_at=1000, now=1000 + 3600, max_age=7200)
    assert needs_rotation(created_at=1000, now=1000 + 7200, max_age=7200)
    assert needs_replenish(remaining=5, low_water=10)
    assert not needs_replenish(remaining=50, low_water=10)


def test_repr_hides_secrets(bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]) -> None:
    """Logging the store shows ids and counts only."""
    secrets, _ = bob_prekeys
    assert secrets.one_time[0].private.hex() not in repr(secrets)
    assert secrets.signed[0].private.hex() not in repr(secrets.signed[0])


def test_store_keeps_one_time_kem_prekeys_and_reads_version_1(alice: IdentityKeyPair) -> None:
    """Version 2 of the store round-trips one-time KEM prekeys; a version 1 store (today's
    vaults) loads without any, ready to number them from their own range."""
    secrets, publics = generate_one_time_kem_prekeys(alice, ONE_TIME_KEM_FIRST_ID, 3)
    assert all(p.prekey_id >= ONE_TIME_KEM_FIRST_ID for p in publics)
    publics[0].verify(alice.public)
    store = PrekeySecrets().with_one_time_kem_prekeys(secrets)
    restored = PrekeySecrets.from_bytes(store.to_bytes())
    assert [k.prekey_id for k in restored.one_time_kem] == [p.prekey_id for p in publics]
    assert restored.next_one_time_kem_id == ONE_TIME_KEM_FIRST_ID + 3
    assert restored.kem_prekey(ONE_TIME_KEM_FIRST_ID + 1).seed == secrets[1].seed
    old = PrekeySecrets().to_bytes()
    old = old[:1] + b"\x01" + old[2:-8]
    loaded = PrekeySecrets.from_bytes(old)
    assert loaded.one_time_kem == () and loaded.next_one_time_kem_id == ONE_TIME_KEM_FIRST_ID
