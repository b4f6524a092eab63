"""Errors raised by securechat.crypto.

    CryptoError                     base: securechat.errors.SecureChatError
    ├── AuthenticationFailed        a ciphertext, record or chunk failed its AEAD check
    ├── DuplicateMessage            a message (or one-time prekey) was already consumed
    ├── TooManySkippedMessages      a message lies more than MAX_SKIP ahead of its chain
    ├── InvalidSignature            a signature does not verify under the expected key
    ├── IdentityKeyMismatch         the identity key offered differs from the pinned one
    ├── InvalidKeyMaterial          bytes that do not parse as the key or state expected
    ├── WrongPassword               the password or recovery code does not open the vault
    ├── SealConflict                a file chunk would be sealed to other bytes under a used nonce
    └── UnsupportedVersion          a serialised format from a newer (or unknown) version

Every message is a sentence the UI can show as is; nothing secret is ever put in one.
"""

from __future__ import annotations

from securechat.errors import SecureChatError


class CryptoError(SecureChatError):
    """Base of every failure raised by securechat.crypto."""


class AuthenticationFailed(CryptoError):
    """The data was altered, sent by someone else, or opened with the wrong key."""


class DuplicateMessage(CryptoError):
    """The message was already decrypted once; a replayed copy is refused."""


class TooManySkippedMessages(CryptoError):
    """Accepting the message would mean storing more skipped keys than allowed."""


class InvalidSignature(CryptoError):
    """A signature failed to verify."""


class IdentityKeyMismatch(CryptoError):
    """The identity key offered for a contact is not the one pinned for them."""

    def __init__(self, user: str, pinned_fingerprint: str, offered_fingerprint: str) -> None:
        super().__init__(
            f"The identity key for {user} has changed (pinned {pinned_fingerprint}, "
            f"offered {offered_fingerprint}). Compare safety numbers with {user} "
            "before trusting the new key."
        )
        self.user = user
        self.pinned_fingerprint = pinned_fingerprint
        self.offered_fingerprint = offered_fingerprint


class InvalidKeyMaterial(CryptoError):
    """Bytes that should hold a key, state or header are malformed."""


class WrongPassword(CryptoError):
    """The password or recovery code does not unlock the vault."""


class SealConflict(CryptoError):
    """Sealing this chunk would put different bytes under a (key, nonce) pair already used."""

    def __init__(self, index: int) -> None:
        super().__init__(
            f"Chunk {index} of the file no longer holds what was encrypted under its nonce; "
            "sealing it again would expose both versions."
        )
        self.index = index


class UnsupportedVersion(CryptoError):
    """The data was written by a format version this build does not know."""
