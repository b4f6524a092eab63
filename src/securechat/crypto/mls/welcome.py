"""GroupInfo and the Welcome message (RFC 9420 §12.4.3) as encoded on the wire.

Encrypting and opening a Welcome is not implemented yet; see docs/mls.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from securechat.crypto.mls.codec import Reader, decode, opaque, optional, uint16, uint32, vector
from securechat.crypto.mls.group_context import (
    Extension,
    GroupContext,
    encode_extensions,
    read_extensions,
)
from securechat.crypto.mls.proposals import HPKECiphertext
from securechat.crypto.mls.psk import PreSharedKeyID


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
