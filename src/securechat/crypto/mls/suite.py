"""The MLS cipher suites 1-7 (RFC 9420 §5.1, §17.1) and two post-quantum hybrid suites
(draft-ietf-mls-pq-ciphersuites, X-Wing) over the `cryptography` library.

This is the only module of the MLS core that imports `cryptography`. It offers the
raw primitives each suite names (hash, HKDF, HMAC, AEAD, Diffie-Hellman for the
DHKEM, signatures) with keys as the byte strings MLS puts on the wire; HPKE
(hpke.py) and the labelled operations (labels.py) are pure logic over them.
Library exceptions are translated into the package's own errors here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from cryptography.exceptions import InvalidSignature as _LibInvalidSignature
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, mldsa, mlkem, x448, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from securechat.crypto.mls.errors import (
    InvalidMLSSignature,
    MissingPrimitive,
    MLSAuthenticationFailed,
    UnsupportedCipherSuite,
)

HashName = Literal["SHA256", "SHA384", "SHA512"]
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


def random_bytes(n: int) -> bytes:
    """Fresh randomness for key generation, nonces' reuse guards and HPKE ephemerals."""
    return os.urandom(n)


@dataclass(frozen=True)
class Kdf:
    """HKDF (RFC 5869) and HMAC over one hash; `nh` is the hash output length."""

    hpke_id: int
    hash_name: HashName
    nh: int

    def _algorithm(self) -> hashes.HashAlgorithm:
        return _HASHES[self.hash_name]()

    def hash(self, data: bytes) -> bytes:
        digest = hashes.Hash(self._algorithm())
        digest.update(data)
        return digest.finalize()

    def mac(self, key: bytes, data: bytes) -> bytes:
        h = hmac.HMAC(key, self._algorithm())
        h.update(data)
        return h.finalize()

    def verify_mac(self, key: bytes, data: bytes, tag: bytes) -> None:
        h = hmac.HMAC(key, self._algorithm())
        h.update(data)
        try:
            h.verify(tag)
        except _LibInvalidSignature:
            raise MLSAuthenticationFailed("The MAC does not match the content.") from None

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        """HKDF-Extract; an empty salt means Nh zero bytes (RFC 5869 §2.2)."""
        return self.mac(salt or bytes(self.nh), ikm)

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return HKDFExpand(self._algorithm(), length, info).derive(prk)


@dataclass(frozen=True)
class Aead:
    """An AEAD of RFC 9180 §7.3: key length `nk`, nonce length `nn`, tag 16 bytes."""

    hpke_id: int
    name: Literal["AES-128-GCM", "AES-256-GCM", "ChaCha20Poly1305"]
    nk: int
    nn: int

    def _cipher(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        if len(key) != self.nk:
            raise ValueError(f"{self.name} needs a {self.nk}-byte key")
        return ChaCha20Poly1305(key) if self.name == "ChaCha20Poly1305" else AESGCM(key)

    def seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._cipher(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._cipher(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise MLSAuthenticationFailed(
                "The ciphertext was altered or sealed under another key."
            ) from None


_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
_ORDERS = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
        16,
    ),
    "P-521": int(
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
        16,
    ),
}


@dataclass(frozen=True)
class Dh:
    """The Diffie-Hellman group under a DHKEM (RFC 9180 §4.1, §7.1).

    Keys are byte strings: SerializePublicKey (raw X25519/X448, uncompressed SEC1
    points) and SerializePrivateKey (raw or the big-endian scalar).
    """

    kem_id: int
    curve: Literal["X25519", "X448", "P-256", "P-384", "P-521"]
    kdf: Kdf
    n_secret: int
    n_pk: int
    n_sk: int

    @property
    def n_enc(self) -> int:
        return self.n_pk

    @property
    def is_nist(self) -> bool:
        return self.curve.startswith("P-")

    @property
    def order(self) -> int:
        return _ORDERS[self.curve]

    @property
    def candidate_bitmask(self) -> int:
        """RFC 9180 §7.1.3: the mask on the first byte of a DeriveKeyPair candidate."""
        return 0x01 if self.curve == "P-521" else 0xFF

    def public_key(self, private: bytes) -> bytes:
        """The serialised public key of a serialised private key."""
        if self.curve == "X25519":
            return _raw_public(_x25519_private(private).public_key())
        if self.curve == "X448":
            return _raw_public(_x448_private(private).public_key())
        return _point(self._ec_private(private).public_key())

    def dh(self, private: bytes, public: bytes) -> bytes:
        """The shared secret; a low-order or invalid public key is refused."""
        try:
            if self.curve == "X25519":
                pub25519 = x25519.X25519PublicKey.from_public_bytes(public)
                return _x25519_private(private).exchange(pub25519)
            if self.curve == "X448":
                pub448 = x448.X448PublicKey.from_public_bytes(public)
                return _x448_private(private).exchange(pub448)
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._ec_curve(), public)
            return self._ec_private(private).exchange(ec.ECDH(), peer)
        except ValueError:
            raise MLSAuthenticationFailed("The HPKE public key is not a valid point.") from None

    def _ec_curve(self) -> ec.EllipticCurve:
        return _CURVES[self.curve]()

    def _ec_private(self, private: bytes) -> ec.EllipticCurvePrivateKey:
        if len(private) != self.n_sk:
            raise ValueError(f"a {self.curve} private key has {self.n_sk} bytes")
        return ec.derive_private_key(int.from_bytes(private, "big"), self._ec_curve())


def _x25519_private(private: bytes) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(private)


def _x448_private(private: bytes) -> x448.X448PrivateKey:
    return x448.X448PrivateKey.from_private_bytes(private)


def _raw_public(key: x25519.X25519PublicKey | x448.X448PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


_XWING_LABEL = b"\\.//^\\"


@dataclass(frozen=True)
class XWing:
    """The X-Wing hybrid KEM (draft-connolly-cfrg-xwing-kem): ML-KEM-768 and X25519
    combined with SHA3-256, used in HPKE as a KEM of its own (kem_id 0x647a).

    The private key is the 32-byte seed; the ML-KEM and X25519 keys are expanded from
    it with SHAKE256 each time (the draft's expandDecapsulationKey), so the seed is
    all that is ever stored. `cryptography` offers no derandomised ML-KEM
    encapsulation, so encapsulation always draws fresh randomness.
    """

    kem_id: int = 0x647A
    curve: Literal["X-Wing"] = "X-Wing"
    n_secret: int = 32
    n_enc: int = 1120
    n_pk: int = 1216
    n_sk: int = 32

    @staticmethod
    def _shake256(data: bytes, length: int) -> bytes:
        digest = hashes.Hash(hashes.SHAKE256(length))
        digest.update(data)
        return digest.finalize()

    def _expand(self, private: bytes) -> tuple[mlkem.MLKEM768PrivateKey, bytes, bytes, bytes]:
        """(sk_M, sk_X, pk_M, pk_X) from the seed."""
        if len(private) != self.n_sk:
            raise ValueError("an X-Wing private key has 32 bytes")
        expanded = self._shake256(private, 96)
        sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        sk_x = expanded[64:]
        pk_x = _raw_public(_x25519_private(sk_x).public_key())
        return sk_m, sk_x, sk_m.public_key().public_bytes_raw(), pk_x

    def public_key(self, private: bytes) -> bytes:
        _, _, pk_m, pk_x = self._expand(private)
        return pk_m + pk_x

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """DeriveKeyPair for HPKE (the draft's "Use in HPKE")."""
        private = self._shake256(ikm, 32)
        return private, self.public_key(private)

    @staticmethod
    def _combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
        digest = hashes.Hash(hashes.SHA3_256())
        digest.update(ss_m + ss_x + ct_x + pk_x + _XWING_LABEL)
        return digest.finalize()

    def encapsulate(self, public: bytes) -> tuple[bytes, bytes]:
        """(shared_secret, ciphertext); an invalid encapsulation key is refused."""
        if len(public) != self.n_pk:
            raise MLSAuthenticationFailed("An X-Wing public key has 1216 bytes.")
        pk_m, pk_x = public[:1184], public[1184:]
        ek_x = x25519.X25519PrivateKey.generate()
        ct_x = _raw_public(ek_x.public_key())
        try:
            ss_x = ek_x.exchange(x25519.X25519PublicKey.from_public_bytes(pk_x))
            ss_m, ct_m = mlkem.MLKEM768PublicKey.from_public_bytes(pk_m).encapsulate()
        except ValueError:
            raise MLSAuthenticationFailed("The X-Wing public key is not valid.") from None
        return self._combine(ss_m, ss_x, ct_x, pk_x), ct_m + ct_x

    def decapsulate(self, ciphertext: bytes, private: bytes) -> bytes:
        if len(ciphertext) != self.n_enc:
            raise MLSAuthenticationFailed("An X-Wing ciphertext has 1120 bytes.")
        sk_m, sk_x, _, pk_x = self._expand(private)
        ct_m, ct_x = ciphertext[:1088], ciphertext[1088:]
        try:
            ss_m = sk_m.decapsulate(ct_m)
            ss_x = _x25519_private(sk_x).exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
        except ValueError:
            raise MLSAuthenticationFailed("The X-Wing ciphertext is not valid.") from None
        return self._combine(ss_m, ss_x, ct_x, pk_x)


Kem = Dh | XWing


@dataclass(frozen=True)
class SignatureScheme:
    """A suite's signature algorithm (§5.1.2); ECDSA signatures are DER, keys are
    the raw EdDSA bytes or the big-endian scalar and the uncompressed point."""

    name: Literal[
        "ed25519",
        "ed448",
        "ecdsa_secp256r1_sha256",
        "ecdsa_secp384r1_sha384",
        "ecdsa_secp521r1_sha512",
        "mldsa44",
    ]

    def _ecdsa(self) -> tuple[ec.EllipticCurve, hashes.HashAlgorithm, int]:
        if self.name == "ecdsa_secp256r1_sha256":
            return ec.SECP256R1(), hashes.SHA256(), 32
        if self.name == "ecdsa_secp384r1_sha384":
            return ec.SECP384R1(), hashes.SHA384(), 48
        return ec.SECP521R1(), hashes.SHA512(), 66

    def public_key(self, private: bytes) -> bytes:
        if self.name == "mldsa44":
            return mldsa.MLDSA44PrivateKey.from_seed_bytes(private).public_key().public_bytes_raw()
        if self.name == "ed25519":
            key25519 = ed25519.Ed25519PrivateKey.from_private_bytes(private).public_key()
            return key25519.public_bytes(Encoding.Raw, PublicFormat.Raw)
        if self.name == "ed448":
            key448 = ed448.Ed448PrivateKey.from_private_bytes(private).public_key()
            return key448.public_bytes(Encoding.Raw, PublicFormat.Raw)
        curve, _, _ = self._ecdsa()
        return _point(ec.derive_private_key(int.from_bytes(private, "big"), curve).public_key())

    def generate(self) -> bytes:
        """A fresh private key in the wire encoding (ML-DSA: the 32-byte seed)."""
        if self.name in ("ed25519", "mldsa44"):
            return random_bytes(32)
        if self.name == "ed448":
            return random_bytes(57)
        curve, _, size = self._ecdsa()
        scalar = ec.generate_private_key(curve).private_numbers().private_value
        return scalar.to_bytes(size, "big")

    def sign(self, private: bytes, message: bytes) -> bytes:
        """ML-DSA-44 signs "pure" with an empty context, hedged (randomised)."""
        if self.name == "mldsa44":
            return mldsa.MLDSA44PrivateKey.from_seed_bytes(private).sign(message)
        if self.name == "ed25519":
            return ed25519.Ed25519PrivateKey.from_private_bytes(private).sign(message)
        if self.name == "ed448":
            return ed448.Ed448PrivateKey.from_private_bytes(private).sign(message)
        curve, digest, _ = self._ecdsa()
        key = ec.derive_private_key(int.from_bytes(private, "big"), curve)
        return key.sign(message, ec.ECDSA(digest))

    def verify(self, public: bytes, message: bytes, signature: bytes) -> None:
        """Raise InvalidMLSSignature unless `signature` is valid and canonically encoded."""
        try:
            if self.name == "mldsa44":
                mldsa.MLDSA44PublicKey.from_public_bytes(public).verify(signature, message)
            elif self.name == "ed25519":
                ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
            elif self.name == "ed448":
                ed448.Ed448PublicKey.from_public_bytes(public).verify(signature, message)
            else:
                curve, digest, _ = self._ecdsa()
                r, s = decode_dss_signature(signature)
                if encode_dss_signature(r, s) != signature:
                    raise ValueError("non-canonical DER")
                key = ec.EllipticCurvePublicKey.from_encoded_point(curve, public)
                key.verify(signature, message, ec.ECDSA(digest))
        except (_LibInvalidSignature, ValueError):
            raise InvalidMLSSignature("The signature does not verify.") from None


@dataclass(frozen=True)
class CipherSuite:
    """One row of the MLS cipher suite registry (§17.1)."""

    id: int
    name: str
    kdf: Kdf
    aead: Aead
    dh: Kem
    signature: SignatureScheme

    @property
    def nh(self) -> int:
        return self.kdf.nh

    def hpke_suite_id(self) -> bytes:
        """RFC 9180 §5.1: "HPKE" || kem_id || kdf_id || aead_id."""
        return (
            b"HPKE"
            + self.dh.kem_id.to_bytes(2, "big")
            + self.kdf.hpke_id.to_bytes(2, "big")
            + self.aead.hpke_id.to_bytes(2, "big")
        )

    def check_available(self) -> None:
        """Raise MissingPrimitive naming what the installed library cannot do."""
        probes: dict[str, Callable[[], object]] = {
            self.dh.curve: lambda: self.dh.public_key(bytes([1]) * self.dh.n_sk),
            self.aead.name: lambda: self.aead.seal(bytes(self.aead.nk), bytes(12), b"", b""),
            self.signature.name: lambda: self.signature.public_key(self.signature.generate()),
        }
        for name, probe in probes.items():
            try:
                probe()
            except UnsupportedAlgorithm:
                raise MissingPrimitive(
                    f"The installed cryptography library lacks {name} (cipher suite {self.id})."
                ) from None


_SHA256 = Kdf(0x0001, "SHA256", 32)
_SHA384 = Kdf(0x0002, "SHA384", 48)
_SHA512 = Kdf(0x0003, "SHA512", 64)
_AES128 = Aead(0x0001, "AES-128-GCM", 16, 12)
_AES256 = Aead(0x0002, "AES-256-GCM", 32, 12)
_CHACHA = Aead(0x0003, "ChaCha20Poly1305", 32, 12)
_X25519 = Dh(0x0020, "X25519", _SHA256, 32, 32, 32)
_X448 = Dh(0x0021, "X448", _SHA512, 64, 56, 56)
_P256 = Dh(0x0010, "P-256", _SHA256, 32, 65, 32)
_P384 = Dh(0x0011, "P-384", _SHA384, 48, 97, 48)
_P521 = Dh(0x0012, "P-521", _SHA512, 64, 133, 66)

HYBRID_X25519 = 0xF001
"""MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 (draft-ietf-mls-pq-ciphersuites TBD1):
no code point is assigned yet, so this build uses one of the private-use values
(RFC 9420 §17.1: 0xF000-0xFFFF). It can only interoperate with peers that agree."""
HYBRID_MLDSA44 = 0xF009
"""MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44 (TBD9), also private-use."""
DEFAULT_SUITE = HYBRID_X25519
_XWING = XWing()

SUITES: dict[int, CipherSuite] = {
    s.id: s
    for s in (
        CipherSuite(
            1,
            "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
            _SHA256,
            _AES128,
            _X25519,
            SignatureScheme("ed25519"),
        ),
        CipherSuite(
            2,
            "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
            _SHA256,
            _AES128,
            _P256,
            SignatureScheme("ecdsa_secp256r1_sha256"),
        ),
        CipherSuite(
            3,
            "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
            _SHA256,
            _CHACHA,
            _X25519,
            SignatureScheme("ed25519"),
        ),
        CipherSuite(
            4,
            "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
            _SHA512,
            _AES256,
            _X448,
            SignatureScheme("ed448"),
        ),
        CipherSuite(
            5,
            "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
            _SHA512,
            _AES256,
            _P521,
            SignatureScheme("ecdsa_secp521r1_sha512"),
        ),
        CipherSuite(
            6,
            "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
            _SHA512,
            _CHACHA,
            _X448,
            SignatureScheme("ed448"),
        ),
        CipherSuite(
            7,
            "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
            _SHA384,
            _AES256,
            _P384,
            SignatureScheme("ecdsa_secp384r1_sha384"),
        ),
        CipherSuite(
            HYBRID_X25519,
            "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519",
            _SHA256,
            _AES128,
            _XWING,
            SignatureScheme("ed25519"),
        ),
        CipherSuite(
            HYBRID_MLDSA44,
            "MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44",
            _SHA384,
            _CHACHA,
            _XWING,
            SignatureScheme("mldsa44"),
        ),
    )
}


@cache
def get_suite(suite_id: int) -> CipherSuite:
    """The suite with that registry value, or UnsupportedCipherSuite."""
    try:
        return SUITES[suite_id]
    except KeyError:
        raise UnsupportedCipherSuite(f"Cipher suite {suite_id:#06x} is not supported.") from None
