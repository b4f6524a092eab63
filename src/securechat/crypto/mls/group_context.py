"""Extensions and the GroupContext (RFC 9420 §8.1, §13).

The GroupContext is what every member must agree on for an epoch; its encoding is
the context of the key schedule, of signatures on PublicMessages and of HPKE in
TreeKEM, so its bytes matter more than its fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from securechat.crypto.mls.codec import Reader, decode, opaque, uint16, uint64, vector
from securechat.crypto.mls.errors import DecodeError

MLS10 = 1


@dataclass(frozen=True)
class Extension:
    """An extension (§13): its type and opaque data, kept as received."""

    extension_type: int
    extension_data: bytes

    def encode(self) -> bytes:
        return uint16(self.extension_type) + opaque(self.extension_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.uint16(), r.opaque())


def encode_extensions(extensions: tuple[Extension, ...]) -> bytes:
    return vector(e.encode() for e in extensions)


def read_extensions(r: Reader) -> tuple[Extension, ...]:
    """`Extension extensions<V>`; a type listed twice is refused (§13)."""
    extensions = tuple(r.vector(Extension.read))
    if len({e.extension_type for e in extensions}) != len(extensions):
        raise DecodeError("an extension type appears more than once")
    return extensions


def read_version(r: Reader) -> int:
    version = r.uint16()
    if version != MLS10:
        raise DecodeError(f"protocol version {version} is not mls10")
    return version


@dataclass(frozen=True)
class GroupContext:
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()

    def encode(self) -> bytes:
        return (
            uint16(MLS10)
            + uint16(self.cipher_suite)
            + opaque(self.group_id)
            + uint64(self.epoch)
            + opaque(self.tree_hash)
            + opaque(self.confirmed_transcript_hash)
            + encode_extensions(self.extensions)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_version(r)
        return cls(r.uint16(), r.opaque(), r.uint64(), r.opaque(), r.opaque(), read_extensions(r))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return decode(data, cls.read)
