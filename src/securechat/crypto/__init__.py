"""Pure cryptography for securechat: identities, prekeys, the PQXDH-style handshake, the
Double Ratchet, encrypted files and the vault key format. No I/O happens in this package;
only primitives.py touches cryptography.hazmat. The design is in docs/crypto.md.
"""

from __future__ import annotations

from securechat.crypto.errors import (
    AuthenticationFailed,
    CryptoError,
    DuplicateMessage,
    IdentityKeyMismatch,
    InvalidKeyMaterial,
    InvalidSignature,
    TooManySkippedMessages,
    UnsupportedVersion,
    WrongPassword,
)
from securechat.crypto.filestream import (
    CHUNK_SIZE,
    FileManifest,
    FileOpener,
    FileSealer,
    ciphertext_size,
    open_file,
    seal_file,
)
from securechat.crypto.handshake import (
    InitialMessage,
    InitiatorResult,
    ResponderResult,
    initiate,
    respond,
)
from securechat.crypto.identity import IdentityDhPublic, IdentityKeyPair, IdentityPublicKey
from securechat.crypto.prekeys import (
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
from securechat.crypto.ratchet import MAX_SKIP, RatchetMessage, RatchetState, decrypt, encrypt
from securechat.crypto.safety import format_safety_number, safety_number
from securechat.crypto.vault import (
    RecordCipher,
    ScryptParams,
    VaultHeader,
    generate_recovery_code,
    is_recovery_code,
    recovery_server_token,
    recovery_vault_secret,
    search_tokens,
)

__all__ = [
    "CHUNK_SIZE",
    "MAX_SKIP",
    "AuthenticationFailed",
    "CryptoError",
    "DuplicateMessage",
    "FileManifest",
    "FileOpener",
    "FileSealer",
    "IdentityDhPublic",
    "IdentityKeyMismatch",
    "IdentityKeyPair",
    "IdentityPublicKey",
    "InitialMessage",
    "InitiatorResult",
    "InvalidKeyMaterial",
    "InvalidSignature",
    "KemPrekeyPublic",
    "OneTimePrekeyPublic",
    "PrekeyBundle",
    "PrekeySecrets",
    "RatchetMessage",
    "RatchetState",
    "RecordCipher",
    "ResponderResult",
    "ScryptParams",
    "SignedPrekeyPublic",
    "TooManySkippedMessages",
    "UnsupportedVersion",
    "VaultHeader",
    "WrongPassword",
    "ciphertext_size",
    "decrypt",
    "encrypt",
    "format_safety_number",
    "generate_kem_prekey",
    "generate_one_time_kem_prekeys",
    "generate_one_time_prekeys",
    "generate_recovery_code",
    "generate_signed_prekey",
    "initiate",
    "is_recovery_code",
    "needs_replenish",
    "needs_rotation",
    "open_file",
    "recovery_server_token",
    "recovery_vault_secret",
    "respond",
    "safety_number",
    "seal_file",
    "search_tokens",
]
