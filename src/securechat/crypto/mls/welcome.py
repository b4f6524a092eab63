"""GroupInfo and the Welcome message (RFC 9420 §12.4.3), and how a new member opens one.

A Welcome encrypts the GroupSecrets to each new member's KeyPackage init key, and
the GroupInfo once, under a key derived from the joiner_secret. Creating a
Welcome and the tree checks a joiner then runs belong to the group logic
(committing.py, joining.py, validation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from securechat.crypto.mls import key_schedule, labels
from securechat.crypto.mls.codec import Reader, decode, opaque, optional, uint16, uint32, vector
from securechat.crypto.mls.errors import InvalidMessage, UnsupportedCipherSuite
from securechat.crypto.mls.group_context import (
    Extension,
    GroupContext,
    encode_extensions,
    read_extensions,
)
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.proposals import HPKECiphertext
from securechat.crypto.mls.psk import PreSharedKeyID
from securechat.crypto.mls.suite import CipherSuite


@dataclass(frozen=True)
class GroupInfo:
    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: bytes
    signer: int
    signature: bytes

    def tbs(self) -> bytes:
        """GroupInfoTBS: every field above the signature."""
        return (
            self.group_context.encode()
            + encode_extensions(self.extensions)
            + opaque(self.confirmation_tag)
            + uint32(self.signer)
        )

    def encode(self) -> bytes:
        return self.tbs() + opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(GroupContext.read(r), read_extensions(r), r.opaque(), r.uint32(), r.opaque())

    def verify(self, suite: CipherSuite, signer_public: bytes) -> None:
        """The signer's key comes from leaf `signer` of the group's ratchet tree."""
        labels.verify_with_label(suite, signer_public, b"GroupInfoTBS", self.tbs(), self.signature)

    def verify_confirmation_tag(self, suite: CipherSuite, confirmation_key: bytes) -> None:
        """The tag proves the GroupInfo's transcript belongs to the epoch we derived."""
        suite.kdf.verify_mac(
            confirmation_key,
            self.group_context.confirmed_transcript_hash,
            self.confirmation_tag,
        )


@dataclass(frozen=True, repr=False)
class GroupSecrets:
    joiner_secret: bytes
    path_secret: bytes | None
    psks: tuple[PreSharedKeyID, ...]

    def encode(self) -> bytes:
        path = None if self.path_secret is None else opaque(self.path_secret)
        return opaque(self.joiner_secret) + optional(path) + vector(p.encode() for p in self.psks)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.optional(Reader.opaque), tuple(r.vector(PreSharedKeyID.read)))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return decode(data, cls.read)


@dataclass(frozen=True)
class EncryptedGroupSecrets:
    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def encode(self) -> bytes:
        return opaque(self.new_member) + self.encrypted_group_secrets.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), HPKECiphertext.read(r))


@dataclass(frozen=True)
class Welcome:
    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes

    def encode(self) -> bytes:
        return (
            uint16(self.cipher_suite)
            + vector(s.encode() for s in self.secrets)
            + opaque(self.encrypted_group_info)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.uint16(), tuple(r.vector(EncryptedGroupSecrets.read)), r.opaque())


def open_group_secrets(
    suite: CipherSuite, welcome: Welcome, key_package: KeyPackage, init_private: bytes
) -> GroupSecrets:
    """Decrypt the GroupSecrets addressed to `key_package` (§12.4.3.1)."""
    if welcome.cipher_suite != suite.id or key_package.cipher_suite != suite.id:
        raise UnsupportedCipherSuite("The Welcome is for another cipher suite.")
    ref = key_package.ref(suite)
    entry = next((s for s in welcome.secrets if s.new_member == ref), None)
    if entry is None:
        raise InvalidMessage("The Welcome holds no secrets for this key package.")
    sealed = entry.encrypted_group_secrets
    plaintext = labels.decrypt_with_label(
        suite,
        init_private,
        b"Welcome",
        welcome.encrypted_group_info,
        sealed.kem_output,
        sealed.ciphertext,
    )
    return GroupSecrets.decode(plaintext)


def open_group_info(
    suite: CipherSuite, welcome: Welcome, joiner_secret: bytes, psk_secret: bytes | None
) -> GroupInfo:
    """Decrypt the GroupInfo; its signature and tag are still to be checked by the caller."""
    secret = key_schedule.welcome_secret(suite, joiner_secret, psk_secret)
    key = labels.expand_with_label(suite, secret, b"key", b"", suite.aead.nk)
    nonce = labels.expand_with_label(suite, secret, b"nonce", b"", suite.aead.nn)
    plaintext = suite.aead.open(key, nonce, b"", welcome.encrypted_group_info)
    return decode(plaintext, GroupInfo.read)
