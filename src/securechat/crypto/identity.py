"""Long-term identity: an RSA-3072 signing key plus an X25519 key-agreement key.

RSA cannot take part in Diffie-Hellman, so each identity also owns an X25519 key whose
public half is signed by the RSA key (IdentityDhPublic). The handshake uses that X25519 key
for its identity DH and checks the signature against the pinned RSA key, which keeps RSA
as the single thing a user verifies (fingerprint, safety number).
"""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import InvalidKeyMaterial

IDENTITY_BITS = 3072
_PRIVATE_VERSION = 1
_DH_VERSION = 1
_DH_LABEL = b"securechat identity-dh v1\x00"


@dataclass(frozen=True)
class IdentityPublicKey:
    """An RSA-3072 public key as canonical SubjectPublicKeyInfo DER."""

    der: bytes

    @classmethod
    def from_der(cls, der: bytes) -> IdentityPublicKey:
        canonical, bits = primitives.rsa_public_canonical(der)
        if canonical != der:
            raise InvalidKeyMaterial("The identity public key is not in canonical DER form.")
        if bits != IDENTITY_BITS:
            raise InvalidKeyMaterial(
                f"The identity key has {bits} bits; securechat identities are {IDENTITY_BITS}."
            )
        return cls(der)

    def fingerprint(self) -> bytes:
        return primitives.sha256(self.der)

    def fingerprint_hex(self) -> str:
        """Upper-case hex in groups of four, short enough to read aloud and compare."""
        digits = self.fingerprint().hex().upper()
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def verify(self, signature: bytes, data: bytes) -> None:
        primitives.rsa_pss_verify(self.der, signature, data)


@dataclass(frozen=True)
class IdentityDhPublic:
    """The identity's X25519 agreement key with the RSA signature that binds it."""

    public: bytes
    signature: bytes

    def verify(self, identity: IdentityPublicKey) -> None:
        """Raise InvalidSignature unless `identity` signed this agreement key."""
        identity.verify(self.signature, _DH_LABEL + self.public)

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.IDENTITY_DH, _DH_VERSION).fixed(self.public).blob(self.signature).finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityDhPublic:
        r = Reader(data, Kind.IDENTITY_DH, "identity agreement key", frozenset({_DH_VERSION}))
        public = r.fixed(primitives.X25519_KEY_SIZE)
        signature = r.blob(max_size=1024)
        r.end()
        return cls(public, signature)


@dataclass(frozen=True, eq=False, repr=False)
class IdentityKeyPair:
    """The private identity; repr is suppressed so it never lands in a log by accident."""

    rsa: primitives.RsaPrivateKey
    dh_private: bytes
    public: IdentityPublicKey
    dh_public: bytes

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        return cls._assemble(
            primitives.RsaPrivateKey.generate(IDENTITY_BITS), primitives.x25519_generate()[0]
        )

    @classmethod
    def _assemble(cls, rsa: primitives.RsaPrivateKey, dh_private: bytes) -> IdentityKeyPair:
        return cls(
            rsa=rsa,
            dh_private=dh_private,
            public=IdentityPublicKey(rsa.public_spki()),
            dh_public=primitives.x25519_public(dh_private),
        )

    def __repr__(self) -> str:
        return f"IdentityKeyPair(fingerprint={self.public.fingerprint_hex()!r})"

    def sign(self, data: bytes) -> bytes:
        """RSA-PSS (SHA-256, MGF1-SHA-256, salt 32); callers prefix a domain label."""
        return self.rsa.sign(data)

    def signed_dh_public(self) -> IdentityDhPublic:
        return IdentityDhPublic(self.dh_public, self.sign(_DH_LABEL + self.dh_public))

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.IDENTITY_PRIVATE, _PRIVATE_VERSION)
            .blob(self.rsa.pkcs8())
            .fixed(self.dh_private)
            .finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityKeyPair:
        r = Reader(data, Kind.IDENTITY_PRIVATE, "identity key", frozenset({_PRIVATE_VERSION}))
        pkcs8 = r.blob(max_size=16384)
        dh_private = r.fixed(primitives.X25519_KEY_SIZE)
        r.end()
        rsa = primitives.RsaPrivateKey.from_pkcs8(pkcs8)
        if rsa.bits != IDENTITY_BITS:
            raise InvalidKeyMaterial(f"The stored identity key is not RSA-{IDENTITY_BITS}.")
        return cls._assemble(rsa, dh_private)
