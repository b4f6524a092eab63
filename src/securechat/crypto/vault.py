"""Key management for the local vault (message history, keys, pins), with no I/O.

A random 256-bit vault key encrypts everything. It is stored twice in the VaultHeader:
wrapped (AES-256-GCM) under scrypt(password) and under a key from the recovery code, so
either opens the vault and changing one never re-encrypts the data.

The recovery code feeds two HKDF outputs with distinct labels: a server token (what the
relay stores to authorise an account recovery) and a vault secret (what unwraps the vault
key). Neither output reveals the other, so the relay never holds anything that opens the
vault.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import AuthenticationFailed, InvalidKeyMaterial, WrongPassword

VAULT_KEY_SIZE = 32
RECOVERY_CODE_LENGTH = 24
BLIND_INDEX_SIZE = 16
MIN_PREFIX = 3
# Longer words are indexed by their first MAX_TOKEN_LENGTH characters, bounding tokens per word.
MAX_TOKEN_LENGTH = 32

_HEADER_VERSION = 1
_RECORD_VERSION = 1
_RECORD_PREFIX = bytes((Kind.SEALED_RECORD, _RECORD_VERSION))
_SALT_SIZE = 16
_NONCE_SIZE = primitives.AES_GCM_NONCE_SIZE
_WRAPPED_SIZE = VAULT_KEY_SIZE + primitives.AES_GCM_TAG_SIZE
_KEY_CHECK_SIZE = 16
_MAX_SCRYPT_MEMORY = 1 << 30
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_RECOVERY_BYTES = RECOVERY_CODE_LENGTH * 5 // 8

_SERVER_TOKEN_INFO = b"securechat recovery server-token v1"
_VAULT_SECRET_INFO = b"securechat recovery vault-secret v1"
_PASSWORD_WRAP_AAD = b"securechat vault password-wrap v1"
_RECOVERY_WRAP_INFO = b"securechat vault recovery-wrap v1"
_KEY_CHECK_INFO = b"securechat vault key-check v1"
_RECORD_KEY_INFO = b"securechat vault records v1"
_INDEX_KEY_INFO = b"securechat vault blind-index v1"
_RECORD_AAD = b"securechat record v1"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost, stored in the header so it can be raised without breaking old vaults."""

    log2_n: int
    r: int
    p: int

    def check(self) -> None:
        # The floor keeps test-sized costs possible; the ceilings stop a doctored header
        # from making unlock allocate more than 1 GiB or run for minutes.
        in_range = 10 <= self.log2_n <= 22 and 1 <= self.r <= 32 and 1 <= self.p <= 16
        if not in_range or 128 * self.r << self.log2_n > _MAX_SCRYPT_MEMORY:
            raise InvalidKeyMaterial("The vault header asks for unsupported scrypt parameters.")


# About 0.4 s and 128 MiB on a 2-core dev VM (see docs/crypto.md).
DEFAULT_SCRYPT = ScryptParams(log2_n=17, r=8, p=1)


def generate_recovery_code() -> str:
    """24 Crockford base32 characters (120 bits) in dash-separated groups of four."""
    value = int.from_bytes(primitives.random_bytes(_RECOVERY_BYTES), "big")
    chars = "".join(
        _CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(RECOVERY_CODE_LENGTH))
    )
    return "-".join(chars[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def is_recovery_code(text: str) -> bool:
    """True for a well-formed code, ignoring case, spaces, dashes and O/I/L look-alikes."""
    return _normalise_code(text) is not None


def recovery_server_token(code: str) -> bytes:
    """What the relay stores (hashed) to authorise an account recovery."""
    return primitives.hkdf_sha256(_code_entropy(code), b"", _SERVER_TOKEN_INFO, 32)


def recovery_vault_secret(code: str) -> bytes:
    """What unwraps the vault key; never sent anywhere."""
    return primitives.hkdf_sha256(_code_entropy(code), b"", _VAULT_SECRET_INFO, 32)


def _normalise_code(text: str) -> str | None:
    cleaned = re.sub(r"[\s-]", "", text).upper().translate(_CROCKFORD_ALIASES)
    if len(cleaned) != RECOVERY_CODE_LENGTH or any(c not in _CROCKFORD for c in cleaned):
        return None
    return cleaned


def _code_entropy(code: str) -> bytes:
    cleaned = _normalise_code(code)
    if cleaned is None:
        raise WrongPassword(
            "That is not a recovery code: it should be 24 letters and digits, "
            "as shown when the vault was created."
        )
    value = 0
    for c in cleaned:
        value = value << 5 | _CROCKFORD.index(c)
    return value.to_bytes(_RECOVERY_BYTES, "big")


@dataclass(frozen=True)
class VaultHeader:
    """Layout: kind, version, log2(n), r, p, then for the password wrap salt (16), nonce (12),
    wrapped key (48), then the same three for the recovery wrap, then a 16-byte key check."""

    params: ScryptParams
    password_salt: bytes
    password_nonce: bytes
    password_wrapped: bytes
    recovery_salt: bytes
    recovery_nonce: bytes
    recovery_wrapped: bytes
    # HKDF(vault key) prefix, so a rewrap given the wrong vault key fails loudly instead
    # of locking the user out of their own vault.
    key_check: bytes

    @classmethod
    def create(
        cls, password: str, recovery_code: str, params: ScryptParams = DEFAULT_SCRYPT
    ) -> tuple[VaultHeader, bytes]:
        """A new header and the fresh vault key it protects."""
        vault_key = primitives.random_bytes(VAULT_KEY_SIZE)
        password_part = _wrap_password(vault_key, password, params)
        recovery_part = _wrap_recovery(vault_key, recovery_code)
        return cls(params, *password_part, *recovery_part, _key_check(vault_key)), vault_key

    def unlock_password(self, password: str) -> bytes:
        key = _password_key(password, self.params, self.password_salt)
        aad = _password_aad(self.params, self.password_salt)
        try:
            vault_key = primitives.aes_gcm_open(
                key, self.password_nonce, self.password_wrapped, aad
            )
        except AuthenticationFailed as exc:
            raise WrongPassword("That password does not unlock this vault.") from exc
        return self._checked(vault_key)

    def unlock_recovery(self, code: str) -> bytes:
        key = _recovery_key(code, self.recovery_salt)
        try:
            vault_key = primitives.aes_gcm_open(
                key, self.recovery_nonce, self.recovery_wrapped, _RECOVERY_WRAP_INFO
            )
        except AuthenticationFailed as exc:
            raise WrongPassword("That recovery code does not unlock this vault.") from exc
        return self._checked(vault_key)

    def rewrap_password(
        self, vault_key: bytes, new_password: str, params: ScryptParams | None = None
    ) -> VaultHeader:
        """The same vault key under a new password, fresh salt, and optionally a new cost."""
        self._checked(vault_key)
        params = params or self.params
        salt, nonce, wrapped = _wrap_password(vault_key, new_password, params)
        return replace(
            self, params=params, password_salt=salt, password_nonce=nonce, password_wrapped=wrapped
        )

    def rewrap_recovery(self, vault_key: bytes, new_code: str) -> VaultHeader:
        self._checked(vault_key)
        salt, nonce, wrapped = _wrap_recovery(vault_key, new_code)
        return replace(self, recovery_salt=salt, recovery_nonce=nonce, recovery_wrapped=wrapped)

    def _checked(self, vault_key: bytes) -> bytes:
        if not primitives.constant_time_equal(_key_check(vault_key), self.key_check):
            raise InvalidKeyMaterial("The vault key does not belong to this vault.")
        return vault_key

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.VAULT_HEADER, _HEADER_VERSION)
            .u8(self.params.log2_n)
            .u8(self.params.r)
            .u8(self.params.p)
            .fixed(self.password_salt)
            .fixed(self.password_nonce)
            .fixed(self.password_wrapped)
            .fixed(self.recovery_salt)
            .fixed(self.recovery_nonce)
            .fixed(self.recovery_wrapped)
            .fixed(self.key_check)
            .finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> VaultHeader:
        r = Reader(data, Kind.VAULT_HEADER, "vault header", frozenset({_HEADER_VERSION}))
        params = ScryptParams(r.u8(), r.u8(), r.u8())
        params.check()
        header = cls(
            params,
            password_salt=r.fixed(_SALT_SIZE),
            password_nonce=r.fixed(_NONCE_SIZE),
            password_wrapped=r.fixed(_WRAPPED_SIZE),
            recovery_salt=r.fixed(_SALT_SIZE),
            recovery_nonce=r.fixed(_NONCE_SIZE),
            recovery_wrapped=r.fixed(_WRAPPED_SIZE),
            key_check=r.fixed(_KEY_CHECK_SIZE),
        )
        r.end()
        return header


def _wrap_password(
    vault_key: bytes, password: str, params: ScryptParams
) -> tuple[bytes, bytes, bytes]:
    salt, nonce = primitives.random_bytes(_SALT_SIZE), primitives.random_bytes(_NONCE_SIZE)
    key = _password_key(password, params, salt)
    return salt, nonce, primitives.aes_gcm_seal(key, nonce, vault_key, _password_aad(params, salt))


def _wrap_recovery(vault_key: bytes, code: str) -> tuple[bytes, bytes, bytes]:
    salt, nonce = primitives.random_bytes(_SALT_SIZE), primitives.random_bytes(_NONCE_SIZE)
    key = _recovery_key(code, salt)
    return salt, nonce, primitives.aes_gcm_seal(key, nonce, vault_key, _RECOVERY_WRAP_INFO)


def _password_key(password: str, params: ScryptParams, salt: bytes) -> bytes:
    params.check()
    # NFKC so the same password typed through different input methods gives the same key.
    secret = unicodedata.normalize("NFKC", password).encode()
    return primitives.scrypt(secret, salt, params.log2_n, params.r, params.p)


def _password_aad(params: ScryptParams, salt: bytes) -> bytes:
    # Binding the cost means a doctored header fails authentication rather than unlocking.
    return _PASSWORD_WRAP_AAD + bytes((params.log2_n, params.r, params.p)) + salt


def _recovery_key(code: str, salt: bytes) -> bytes:
    return primitives.hkdf_sha256(recovery_vault_secret(code), salt, _RECOVERY_WRAP_INFO, 32)


def _key_check(vault_key: bytes) -> bytes:
    return primitives.hkdf_sha256(vault_key, b"", _KEY_CHECK_INFO, _KEY_CHECK_SIZE)


class RecordCipher:
    """Seals vault rows; kind and id are bound as AAD so rows cannot be swapped."""

    __slots__ = ("_aead", "_index_key")

    def __init__(self, vault_key: bytes) -> None:
        self._aead = primitives.AesGcm(primitives.hkdf_sha256(vault_key, b"", _RECORD_KEY_INFO, 32))
        self._index_key = primitives.hkdf_sha256(vault_key, b"", _INDEX_KEY_INFO, 32)

    def seal(self, kind: str, record_id: bytes, plaintext: bytes) -> bytes:
        """kind, version, nonce (12), AES-256-GCM output."""
        nonce = primitives.random_bytes(_NONCE_SIZE)
        return (
            _RECORD_PREFIX + nonce + self._aead.seal(nonce, plaintext, _record_aad(kind, record_id))
        )

    def open(self, kind: str, record_id: bytes, blob: bytes) -> bytes:
        if len(blob) < len(_RECORD_PREFIX) + _NONCE_SIZE or blob[:1] != _RECORD_PREFIX[:1]:
            raise AuthenticationFailed("A stored record is damaged and could not be read.")
        Reader(blob[:2], Kind.SEALED_RECORD, "stored record", frozenset({_RECORD_VERSION}))
        nonce, ciphertext = blob[2 : 2 + _NONCE_SIZE], blob[2 + _NONCE_SIZE :]
        try:
            return self._aead.open(nonce, ciphertext, _record_aad(kind, record_id))
        except AuthenticationFailed as exc:
            raise AuthenticationFailed(
                "A stored record could not be authenticated: it was altered or moved."
            ) from exc

    def blind_index(self, word: str) -> bytes:
        """A keyed, truncated tag for a search token: equal tokens give equal tags."""
        token = unicodedata.normalize("NFKC", word).casefold()
        return primitives.hmac_sha256(self._index_key, token.encode())[:BLIND_INDEX_SIZE]


def _record_aad(kind: str, record_id: bytes) -> bytes:
    k = kind.encode()
    return b"".join(
        (
            _RECORD_AAD,
            _RECORD_PREFIX,
            len(k).to_bytes(2, "big"),
            k,
            len(record_id).to_bytes(4, "big"),
            record_id,
        )
    )


def search_tokens(text: str) -> set[str]:
    """Every word (NFKC, case-folded, split on non-word characters) and each of its prefixes
    of MIN_PREFIX or more characters, so a search for "crypt" finds "cryptography".

    Words are first cut to MAX_TOKEN_LENGTH characters.
    """
    tokens: set[str] = set()
    for word in re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()):
        word = word[:MAX_TOKEN_LENGTH]
        tokens.add(word)
        tokens.update(word[:k] for k in range(MIN_PREFIX, len(word)))
    return tokens
