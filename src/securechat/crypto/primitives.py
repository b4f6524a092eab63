"""The one module that touches cryptography.hazmat.

Everything else in securechat.crypto works with plain bytes and calls these wrappers,
so the attack surface on the library is small, reviewable, and covered by the Wycheproof
vectors in tests/crypto. Library exceptions are translated here into our own errors so
callers never see a bare ValueError or cryptography.exceptions.InvalidTag.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidSignature as _LibInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric import mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from securechat.crypto.errors import AuthenticationFailed, InvalidKeyMaterial, InvalidSignature

X25519_KEY_SIZE = 32
MLKEM768_SEED_SIZE = 64
MLKEM768_PUBLIC_SIZE = 1184
MLKEM768_CIPHERTEXT_SIZE = 1088
AES_GCM_NONCE_SIZE = 12
AES_GCM_TAG_SIZE = 16
RSA_PSS_SALT_SIZE = 32
# Wycheproof's RSA-PSS vectors use 2048-bit keys; our own identities are 3072 (identity.py).
RSA_MIN_VERIFY_BITS = 2048

_SHA256 = hashes.SHA256()
_PSS = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=RSA_PSS_SALT_SIZE)


def random_bytes(size: int) -> bytes:
    """Fresh bytes from the OS CSPRNG, the only randomness source of the package."""
    return os.urandom(size)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Sha256:
    """Incremental SHA-256 for data that arrives in pieces (file chunks, their tags)."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = _hmac.HMAC(key, _SHA256)
    mac.update(data)
    return mac.finalize()


def hmac_sha256_pair(key: bytes, first: bytes, second: bytes) -> tuple[bytes, bytes]:
    """Two HMACs under one key, keyed once: the ratchet's chain step, on every message."""
    mac = _hmac.HMAC(key, _SHA256)
    other = mac.copy()
    mac.update(first)
    other.update(second)
    return mac.finalize(), other.finalize()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869); an empty salt means HashLen zero bytes, as the RFC says.

    Raises ValueError for a length above 255 * 32: asking for that is a programming error.
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def scrypt(password: bytes, salt: bytes, log2_n: int, r: int, p: int, length: int = 32) -> bytes:
    return Scrypt(salt=salt, length=length, n=1 << log2_n, r=r, p=p).derive(password)


class AesGcm:
    """AES-GCM under one key, kept so repeated use (records, file chunks) skips key setup.

    Any AES key size the library accepts is taken so the Wycheproof vectors can run through
    this class; every caller in securechat passes a 32-byte key.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        try:
            self._aead = AESGCM(key)
        except ValueError as exc:
            raise InvalidKeyMaterial("An AES-GCM key must be 16, 24 or 32 bytes long.") from exc

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise AuthenticationFailed(
                "The data could not be authenticated: it was altered or the key is wrong."
            ) from exc


def aes_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """One-shot AES-256-GCM, for keys used once (ratchet message keys, key wraps)."""
    if len(key) != 32:
        raise InvalidKeyMaterial("An AES-256-GCM key must be 32 bytes long.")
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(key) != 32:
        raise InvalidKeyMaterial("An AES-256-GCM key must be 32 bytes long.")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise AuthenticationFailed(
            "The data could not be authenticated: it was altered or the key is wrong."
        ) from exc


def x25519_generate() -> tuple[bytes, bytes]:
    """A fresh key pair as (private, public) raw 32-byte strings."""
    private = x25519.X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def x25519_public(private: bytes) -> bytes:
    return _x25519_private(private).public_key().public_bytes_raw()


def x25519_agree(private: bytes, peer_public: bytes) -> bytes:
    """The shared secret; low-order peer points (all-zero output) are refused."""
    if len(peer_public) != X25519_KEY_SIZE:
        raise InvalidKeyMaterial("An X25519 public key must be 32 bytes long.")
    public = x25519.X25519PublicKey.from_public_bytes(peer_public)
    try:
        return _x25519_private(private).exchange(public)
    except ValueError as exc:
        raise InvalidKeyMaterial(
            "The contact's key agreement key is invalid (a low-order point)."
        ) from exc


def _x25519_private(private: bytes) -> x25519.X25519PrivateKey:
    if len(private) != X25519_KEY_SIZE:
        raise InvalidKeyMaterial("An X25519 private key must be 32 bytes long.")
    return x25519.X25519PrivateKey.from_private_bytes(private)


def mlkem_generate() -> tuple[bytes, bytes]:
    """A fresh ML-KEM-768 key pair as (64-byte seed d||z, encapsulation key)."""
    private = mlkem.MLKEM768PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def mlkem_public_from_seed(seed: bytes) -> bytes:
    return _mlkem_private(seed).public_key().public_bytes_raw()


def mlkem_encapsulate(public: bytes) -> tuple[bytes, bytes]:
    """(shared secret, ciphertext) for the holder of `public`."""
    if len(public) != MLKEM768_PUBLIC_SIZE:
        raise InvalidKeyMaterial("An ML-KEM-768 public key must be 1184 bytes long.")
    try:
        key = mlkem.MLKEM768PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise InvalidKeyMaterial("The contact's ML-KEM-768 public key is malformed.") from exc
    return key.encapsulate()


def mlkem_decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """The shared secret; a tampered ciphertext yields an unrelated one (implicit rejection)."""
    if len(ciphertext) != MLKEM768_CIPHERTEXT_SIZE:
        raise InvalidKeyMaterial("An ML-KEM-768 ciphertext must be 1088 bytes long.")
    return _mlkem_private(seed).decapsulate(ciphertext)


def _mlkem_private(seed: bytes) -> mlkem.MLKEM768PrivateKey:
    if len(seed) != MLKEM768_SEED_SIZE:
        raise InvalidKeyMaterial("An ML-KEM-768 private key seed must be 64 bytes long.")
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)


class RsaPrivateKey:
    """An RSA private key held as a library object so signing skips re-parsing the DER."""

    __slots__ = ("_key",)

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls, bits: int) -> RsaPrivateKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_pkcs8(cls, der: bytes) -> RsaPrivateKey:
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyMaterial("The stored identity private key is damaged.") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidKeyMaterial("The stored identity private key is not an RSA key.")
        return cls(key)

    @property
    def bits(self) -> int:
        return self._key.key_size

    def pkcs8(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_spki(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        """RSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt."""
        return self._key.sign(data, _PSS, hashes.SHA256())


def rsa_public_canonical(spki_der: bytes) -> tuple[bytes, int]:
    """(re-encoded DER, modulus bits) of an RSA SubjectPublicKeyInfo, refusing anything else.

    Fingerprints and pins compare DER bytes, so a key must have exactly one encoding.
    """
    key = _rsa_public(spki_der)
    canonical = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return canonical, key.key_size


def rsa_pss_verify(spki_der: bytes, signature: bytes, data: bytes) -> None:
    """Check an RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature or raise InvalidSignature."""
    key = _rsa_public(spki_der)
    if key.key_size < RSA_MIN_VERIFY_BITS:
        raise InvalidKeyMaterial("RSA keys shorter than 2048 bits are not accepted.")
    try:
        key.verify(signature, data, _PSS, hashes.SHA256())
    except _LibInvalidSignature as exc:
        raise InvalidSignature(
            "A signature did not verify: the data was altered or signed by another key."
        ) from exc


def _rsa_public(spki_der: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError) as exc:
        raise InvalidKeyMaterial("The identity public key is not a valid DER key.") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKeyMaterial("The identity public key is not an RSA key.")
    return key
