"""Identity keys: signing, fingerprints, validation and the private-key container."""

from __future__ import annotations

import pytest

from securechat.crypto import (
    IdentityDhPublic,
    IdentityKeyPair,
    IdentityPublicKey,
    InvalidKeyMaterial,
    InvalidSignature,
    UnsupportedVersion,
    primitives,
)


def test_sign_verify(alice: IdentityKeyPair) -> None:
    """A signature verifies under the signer's public key and not for other data."""
    signature = alice.sign(b"statement")
    alice.public.verify(signature, b"statement")
    with pytest.raises(InvalidSignature):
        alice.public.verify(signature, b"statement!")


def test_signature_by_other_identity_fails(
    alice: IdentityKeyPair, mallory: IdentityKeyPair
) -> None:
    """Mallory's signature does not pass as Alice's."""
    with pytest.raises(InvalidSignature):
        alice.public.verify(mallory.sign(b"x"), b"x")


def test_private_key_round_trip(alice: IdentityKeyPair) -> None:
    """The serialised identity restores the same RSA and X25519 keys."""
    restored = IdentityKeyPair.from_bytes(alice.to_bytes())
    assert restored.public == alice.public
    assert restored.dh_public == alice.dh_public
    restored.public.verify(restored.sign(b"m"), b"m")


def test_private_key_versioned(alice: IdentityKeyPair) -> None:
    """An unknown container version is reported as such, not as garbage."""
    data = alice.to_bytes()
    with pytest.raises(UnsupportedVersion):
        IdentityKeyPair.from_bytes(data[:1] + b"\x09" + data[2:])


@pytest.mark.parametrize("cut", [0, 1, 2, 10, -1])
def test_truncated_private_key(alice: IdentityKeyPair, cut: int) -> None:
    """Truncated key bytes raise InvalidKeyMaterial, never IndexError or struct.error."""
    with pytest.raises(InvalidKeyMaterial):
        IdentityKeyPair.from_bytes(alice.to_bytes()[:cut])


def test_trailing_bytes_refused(alice: IdentityKeyPair) -> None:
    """One object has one encoding: extra bytes are an error."""
    with pytest.raises(InvalidKeyMaterial):
        IdentityKeyPair.from_bytes(alice.to_bytes() + b"\x00")


def test_fingerprint_is_sha256_of_spki(alice: IdentityKeyPair) -> None:
    """The fingerprint commits to the SPKI DER; the display form is grouped hex."""
    assert alice.public.fingerprint() == primitives.sha256(alice.public.der)
    groups = alice.public.fingerprint_hex().split(" ")
    assert len(groups) == 16 and all(len(g) == 4 for g in groups)
    assert "".join(groups).lower() == alice.public.fingerprint().hex()


def test_from_der_accepts_own_keys(alice: IdentityKeyPair) -> None:
    """A real identity parses back to an equal public key."""
    assert IdentityPublicKey.from_der(alice.public.der) == alice.public


def test_from_der_refuses_2048_bit_keys() -> None:
    """Identities are RSA-3072; a 2048-bit key is refused even though it is valid RSA."""
    short = primitives.RsaPrivateKey.generate(2048)
    with pytest.raises(InvalidKeyMaterial):
        IdentityPublicKey.from_der(short.public_spki())


def test_from_der_refuses_garbage() -> None:
    """Bytes that are not DER at all give InvalidKeyMaterial."""
    with pytest.raises(InvalidKeyMaterial):
        IdentityPublicKey.from_der(b"not a key")


def test_identity_dh_signature(alice: IdentityKeyPair, mallory: IdentityKeyPair) -> None:
    """The X25519 agreement key is bound to the RSA identity that signed it."""
    signed = IdentityDhPublic.from_bytes(alice.signed_dh_public().to_bytes())
    signed.verify(alice.public)
    with pytest.raises(InvalidSignature):
        signed.verify(mallory.public)
    forged = IdentityDhPublic(mallory.dh_public, signed.signature)
    with pytest.raises(InvalidSignature):
        forged.verify(alice.public)


def test_repr_hides_private_key(alice: IdentityKeyPair) -> None:
    """repr shows the fingerprint only, so logging an identity leaks nothing."""
    assert alice.dh_private.hex() not in repr(alice)
    assert alice.public.fingerprint_hex() in repr(alice)
