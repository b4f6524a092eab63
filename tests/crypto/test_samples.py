"""Stored samples of every serialised format still parse and open (see samples/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.crypto import (
    FileManifest,
    IdentityKeyPair,
    InitialMessage,
    PrekeyBundle,
    PrekeySecrets,
    RatchetMessage,
    RatchetState,
    RecordCipher,
    VaultHeader,
    decrypt,
    encrypt,
    initiate,
    open_file,
    respond,
)
from securechat.crypto.sessions import SessionRecord

SAMPLES = Path(__file__).resolve().parent / "samples"
RECOVERY_CODE = "SAMP-LE00-RECV-0000-CODE-0001"


def load(name: str) -> bytes:
    return bytes.fromhex((SAMPLES / f"{name}.hex").read_text().strip())


@pytest.fixture(scope="module")
def alice() -> IdentityKeyPair:
    return IdentityKeyPair.from_bytes(load("identity_alice"))


@pytest.fixture(scope="module")
def bob() -> IdentityKeyPair:
    return IdentityKeyPair.from_bytes(load("identity_bob"))


def test_identity_samples_sign(alice: IdentityKeyPair) -> None:
    """A stored identity key still signs verifiably."""
    alice.public.verify(alice.sign(b"still works"), b"still works")


def test_stored_session_start(alice: IdentityKeyPair, bob: IdentityKeyPair) -> None:
    """Stored secrets + initial message reproduce the session that opens message 1."""
    secrets = PrekeySecrets.from_bytes(load("prekey_secrets_bob"))
    initial = InitialMessage.from_bytes(load("initial_message"))
    accepted = respond(bob, "bob", "alice", alice.public, secrets, initial)
    message = RatchetMessage.from_bytes(load("ratchet_message_1"))
    _, plaintext = decrypt(accepted.state, message, "alice", "bob")
    assert plaintext == b"sample message 1"


def test_stored_ratchet_state(bob: IdentityKeyPair) -> None:
    """A stored state decrypts the message sent after it was saved, then keeps going."""
    state = RatchetState.from_bytes(load("ratchet_state_bob"))
    message = RatchetMessage.from_bytes(load("ratchet_message_2"))
    state, plaintext = decrypt(state, message, "alice", "bob")
    assert plaintext == b"sample message 2"
    encrypt(state, b"reply", "bob", "alice")


def test_stored_bundle(alice: IdentityKeyPair, bob: IdentityKeyPair) -> None:
    """A stored bundle still verifies under its identity and starts a session."""
    bundle = PrekeyBundle.from_bytes(load("prekey_bundle_bob"))
    assert initiate(alice, "alice", "bob", bob.public, bundle).peer_identity == bob.public


def test_stored_vault() -> None:
    """The stored header opens by password and recovery code; the record opens under it."""
    header = VaultHeader.from_bytes(load("vault_header"))
    vault_key = header.unlock_password("sample password")
    assert header.unlock_recovery(RECOVERY_CODE) == vault_key
    record = RecordCipher(vault_key).open("message", b"sample-1", load("sealed_record"))
    assert record == b"sample record"


def test_stored_file() -> None:
    """The stored manifest and chunk decrypt to the original file."""
    manifest = FileManifest.from_bytes(load("file_manifest"))
    assert (manifest.name, manifest.mime, manifest.size) == ("sample.txt", "text/plain", 11)
    assert manifest.version == 1
    assert open_file(manifest, [load("file_chunk_0")]) == b"sample file"


def test_stored_file_format_2() -> None:
    """Format 2 (digest over the chunk tags) opens; it checks its digest like format 1."""
    manifest = FileManifest.from_bytes(load("file_manifest_v2"))
    assert (manifest.name, manifest.version) == ("sample-v2.txt", 2)
    assert manifest.to_bytes() == load("file_manifest_v2")
    assert open_file(manifest, [load("file_v2_chunk_0")]) == b"sample file, format 2"


def test_stored_session_record() -> None:
    """A stored session record still knows its starts and opens message 2 with its archive."""
    record = SessionRecord.from_bytes(load("session_record"))
    bob_state = RatchetState.from_bytes(load("ratchet_state_bob"))
    assert record.created_at_ms == 1_700_000_100_000
    assert record.knows(bob_state.session_id) and record.knows(b"\x5a" * 32)
    message = RatchetMessage.from_bytes(load("ratchet_message_2"))
    assert decrypt(record.archived[0], message, "alice", "bob")[1] == b"sample message 2"
