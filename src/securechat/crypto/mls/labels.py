"""The labelled operations MLS builds everything else on (RFC 9420 §5.1-5.2, §8).

Each one binds its output to a purpose: a label, prefixed "MLS 1.0 " so that no
MLS value can be confused with one from another protocol, goes into the input of
every KDF, signature and HPKE call. RefHash alone takes its label as given.
"""

from __future__ import annotations

from securechat.crypto.mls import hpke
from securechat.crypto.mls.codec import opaque, uint16, uint32
from securechat.crypto.mls.suite import CipherSuite

_PREFIX = b"MLS 1.0 "


def expand_with_label(
    suite: CipherSuite, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """ExpandWithLabel: KDF.Expand over the KDFLabel struct (§8)."""
    kdf_label = uint16(length) + opaque(_PREFIX + label) + opaque(context)
    return suite.kdf.expand(secret, kdf_label, length)


def derive_secret(suite: CipherSuite, secret: bytes, label: bytes) -> bytes:
    return expand_with_label(suite, secret, label, b"", suite.nh)


def derive_tree_secret(
    suite: CipherSuite, secret: bytes, label: bytes, generation: int, length: int
) -> bytes:
    """DeriveTreeSecret (§9): the generation, as uint32, is the context."""
    return expand_with_label(suite, secret, label, uint32(generation), length)


def ref_hash(suite: CipherSuite, label: bytes, value: bytes) -> bytes:
    """RefHash (§5.2): Hash(RefHashInput) for KeyPackageRef, ProposalRef and the like."""
    return suite.kdf.hash(opaque(label) + opaque(value))


def _sign_content(label: bytes, content: bytes) -> bytes:
    return opaque(_PREFIX + label) + opaque(content)


def sign_with_label(suite: CipherSuite, private: bytes, label: bytes, content: bytes) -> bytes:
    return suite.signature.sign(private, _sign_content(label, content))


def verify_with_label(
    suite: CipherSuite, public: bytes, label: bytes, content: bytes, signature: bytes
) -> None:
    """Raise InvalidMLSSignature unless `signature` is SignWithLabel(label, content)."""
    suite.signature.verify(public, _sign_content(label, content), signature)


def _encrypt_context(label: bytes, context: bytes) -> bytes:
    return opaque(_PREFIX + label) + opaque(context)


def encrypt_with_label(
    suite: CipherSuite,
    public: bytes,
    label: bytes,
    context: bytes,
    plaintext: bytes,
    *,
    ikm_e: bytes | None = None,
) -> tuple[bytes, bytes]:
    """EncryptWithLabel (§5.1.3): (kem_output, ciphertext) by HPKE SealBase."""
    return hpke.seal_base(
        suite, public, _encrypt_context(label, context), b"", plaintext, ikm_e=ikm_e
    )


def decrypt_with_label(
    suite: CipherSuite,
    private: bytes,
    label: bytes,
    context: bytes,
    kem_output: bytes,
    ciphertext: bytes,
) -> bytes:
    return hpke.open_base(
        suite, private, kem_output, _encrypt_context(label, context), b"", ciphertext
    )
