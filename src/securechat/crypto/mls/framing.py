"""Message framing structures (RFC 9420 §6): content, its authentication, and the
PublicMessage / PrivateMessage / MLSMessage envelopes. Protection itself (signing,
MACs, encryption) is in protection.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Self, TypeVar

from securechat.crypto.mls.codec import Reader, decode, opaque, uint8, uint16, uint32, uint64
from securechat.crypto.mls.errors import DecodeError
from securechat.crypto.mls.group_context import MLS10, GroupContext, read_version
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.proposals import Commit, Proposal, encode_proposal, read_proposal
from securechat.crypto.mls.welcome import GroupInfo, Welcome

E = TypeVar("E", bound=IntEnum)


class WireFormat(IntEnum):
    PUBLIC_MESSAGE = 1
    PRIVATE_MESSAGE = 2
    WELCOME = 3
    GROUP_INFO = 4
    KEY_PACKAGE = 5


class ContentType(IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


def _enum(kind: type[E], value: int) -> E:
    try:
        return kind(value)
    except ValueError:
        raise DecodeError(f"{value} is not a defined {kind.__name__}") from None


@dataclass(frozen=True)
class Sender:
    """`index` is the leaf index of a member or the slot of an external sender."""

    sender_type: SenderType
    index: int = 0

    def encode(self) -> bytes:
        if self.sender_type in (SenderType.MEMBER, SenderType.EXTERNAL):
            return uint8(self.sender_type) + uint32(self.index)
        return uint8(self.sender_type)

    @classmethod
    def read(cls, r: Reader) -> Self:
        kind = _enum(SenderType, r.uint8())
        if kind in (SenderType.MEMBER, SenderType.EXTERNAL):
            return cls(kind, r.uint32())
        return cls(kind)


Content = bytes | Proposal | Commit


def content_type_of(content: Content) -> ContentType:
    if isinstance(content, bytes):
        return ContentType.APPLICATION
    if isinstance(content, Commit):
        return ContentType.COMMIT
    return ContentType.PROPOSAL


def encode_content(content: Content) -> bytes:
    """The body selected by content_type (application data, Proposal or Commit)."""
    if isinstance(content, bytes):
        return opaque(content)
    if isinstance(content, Commit):
        return content.encode()
    return encode_proposal(content)


def read_content(r: Reader, content_type: ContentType) -> Content:
    if content_type == ContentType.APPLICATION:
        return r.opaque()
    if content_type == ContentType.PROPOSAL:
        return read_proposal(r)
    return Commit.read(r)


@dataclass(frozen=True)
class FramedContent:
    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content: Content

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)

    def encode(self) -> bytes:
        return (
            opaque(self.group_id)
            + uint64(self.epoch)
            + self.sender.encode()
            + opaque(self.authenticated_data)
            + uint8(self.content_type)
            + encode_content(self.content)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        group_id, epoch, sender, aad = r.opaque(), r.uint64(), Sender.read(r), r.opaque()
        content_type = _enum(ContentType, r.uint8())
        return cls(group_id, epoch, sender, aad, read_content(r, content_type))

    def tbs(self, wire_format: WireFormat, context: GroupContext | None) -> bytes:
        """FramedContentTBS (§6.1): members and new-member commits sign the GroupContext."""
        out = uint16(MLS10) + uint16(wire_format) + self.encode()
        if self.sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT):
            if context is None:
                raise ValueError("a member's content is signed with the GroupContext")
            out += context.encode()
        return out


@dataclass(frozen=True)
class FramedContentAuthData:
    """The signature, and for a Commit its confirmation tag."""

    signature: bytes
    confirmation_tag: bytes | None = None

    def encode(self) -> bytes:
        tag = b"" if self.confirmation_tag is None else opaque(self.confirmation_tag)
        return opaque(self.signature) + tag

    @classmethod
    def read(cls, r: Reader, content_type: ContentType) -> Self:
        signature = r.opaque()
        return cls(signature, r.opaque() if content_type == ContentType.COMMIT else None)


@dataclass(frozen=True)
class AuthenticatedContent:
    wire_format: WireFormat
    content: FramedContent
    auth: FramedContentAuthData

    def encode(self) -> bytes:
        return uint16(self.wire_format) + self.content.encode() + self.auth.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        wire_format = _enum(WireFormat, r.uint16())
        content = FramedContent.read(r)
        return cls(wire_format, content, FramedContentAuthData.read(r, content.content_type))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return decode(data, cls.read)


@dataclass(frozen=True)
class PublicMessage:
    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: bytes | None

    def encode(self) -> bytes:
        tag = b"" if self.membership_tag is None else opaque(self.membership_tag)
        return self.content.encode() + self.auth.encode() + tag

    @classmethod
    def read(cls, r: Reader) -> Self:
        content = FramedContent.read(r)
        auth = FramedContentAuthData.read(r, content.content_type)
        member = content.sender.sender_type == SenderType.MEMBER
        return cls(content, auth, r.opaque() if member else None)


@dataclass(frozen=True)
class PrivateMessage:
    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return (
            opaque(self.group_id)
            + uint64(self.epoch)
            + uint8(self.content_type)
            + opaque(self.authenticated_data)
            + opaque(self.encrypted_sender_data)
            + opaque(self.ciphertext)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        group_id, epoch = r.opaque(), r.uint64()
        content_type = _enum(ContentType, r.uint8())
        return cls(group_id, epoch, content_type, r.opaque(), r.opaque(), r.opaque())


Body = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage
_WIRE_FORMATS: tuple[tuple[type[Body], WireFormat], ...] = (
    (PublicMessage, WireFormat.PUBLIC_MESSAGE),
    (PrivateMessage, WireFormat.PRIVATE_MESSAGE),
    (Welcome, WireFormat.WELCOME),
    (GroupInfo, WireFormat.GROUP_INFO),
    (KeyPackage, WireFormat.KEY_PACKAGE),
)


@dataclass(frozen=True)
class MLSMessage:
    """The outer envelope (§6) of every message a client sends or receives."""

    message: Body

    @property
    def wire_format(self) -> WireFormat:
        return next(wf for kind, wf in _WIRE_FORMATS if isinstance(self.message, kind))

    def encode(self) -> bytes:
        return uint16(MLS10) + uint16(self.wire_format) + self.message.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_version(r)
        wire_format = _enum(WireFormat, r.uint16())
        kind = next(kind for kind, wf in _WIRE_FORMATS if wf == wire_format)
        return cls(kind.read(r))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return decode(data, cls.read)
