"""Proposals, UpdatePath and Commit as encoded on the wire (RFC 9420 §7.6, §12.1, §12.4).

Proposal types other than the seven of RFC 9420 cannot be decoded: their bodies
have no length prefix, so a reader that does not know them cannot skip them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from securechat.crypto.mls.codec import Reader, opaque, optional, uint8, uint16, uint32, vector
from securechat.crypto.mls.errors import DecodeError
from securechat.crypto.mls.group_context import (
    Extension,
    encode_extensions,
    read_extensions,
    read_version,
)
from securechat.crypto.mls.leaf_node import KeyPackage, LeafNode
from securechat.crypto.mls.psk import PreSharedKeyID


class ProposalType(IntEnum):
    ADD = 1
    UPDATE = 2
    REMOVE = 3
    PSK = 4
    REINIT = 5
    EXTERNAL_INIT = 6
    GROUP_CONTEXT_EXTENSIONS = 7


@dataclass(frozen=True)
class Add:
    key_package: KeyPackage
    proposal_type = ProposalType.ADD

    def encode_body(self) -> bytes:
        return self.key_package.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(KeyPackage.read(r))


@dataclass(frozen=True)
class Update:
    leaf_node: LeafNode
    proposal_type = ProposalType.UPDATE

    def encode_body(self) -> bytes:
        return self.leaf_node.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r))


@dataclass(frozen=True)
class Remove:
    removed: int
    proposal_type = ProposalType.REMOVE

    def encode_body(self) -> bytes:
        return uint32(self.removed)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.uint32())


@dataclass(frozen=True)
class PreSharedKey:
    psk: PreSharedKeyID
    proposal_type = ProposalType.PSK

    def encode_body(self) -> bytes:
        return self.psk.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.read(r))


@dataclass(frozen=True)
class ReInit:
    group_id: bytes
    cipher_suite: int
    extensions: tuple[Extension, ...]
    proposal_type = ProposalType.REINIT

    def encode_body(self) -> bytes:
        return (
            opaque(self.group_id)
            + uint16(1)
            + uint16(self.cipher_suite)
            + encode_extensions(self.extensions)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        group_id = r.opaque()
        read_version(r)
        return cls(group_id, r.uint16(), read_extensions(r))


@dataclass(frozen=True)
class ExternalInit:
    kem_output: bytes
    proposal_type = ProposalType.EXTERNAL_INIT

    def encode_body(self) -> bytes:
        return opaque(self.kem_output)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class GroupContextExtensions:
    extensions: tuple[Extension, ...]
    proposal_type = ProposalType.GROUP_CONTEXT_EXTENSIONS

    def encode_body(self) -> bytes:
        return encode_extensions(self.extensions)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_extensions(r))


Proposal = Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions


def encode_proposal(proposal: Proposal) -> bytes:
    return uint16(proposal.proposal_type) + proposal.encode_body()


def read_proposal(r: Reader) -> Proposal:
    kind = r.uint16()
    for proposal in (
        Add,
        Update,
        Remove,
        PreSharedKey,
        ReInit,
        ExternalInit,
        GroupContextExtensions,
    ):
        if proposal.proposal_type == kind:
            return proposal.read(r)
    raise DecodeError(f"proposal type {kind} is not supported")


@dataclass(frozen=True)
class HPKECiphertext:
    kem_output: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return opaque(self.kem_output) + opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True)
class UpdatePathNode:
    encryption_key: bytes
    encrypted_path_secret: tuple[HPKECiphertext, ...]

    def encode(self) -> bytes:
        return opaque(self.encryption_key) + vector(c.encode() for c in self.encrypted_path_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.read)))


@dataclass(frozen=True)
class UpdatePath:
    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]

    def encode(self) -> bytes:
        return self.leaf_node.encode() + vector(n.encode() for n in self.nodes)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r), tuple(r.vector(UpdatePathNode.read)))


@dataclass(frozen=True)
class ProposalRef:
    """A proposal sent earlier, named by its RefHash (§5.2)."""

    reference: bytes


ProposalOrRef = Proposal | ProposalRef


def _encode_proposal_or_ref(item: ProposalOrRef) -> bytes:
    if isinstance(item, ProposalRef):
        return uint8(2) + opaque(item.reference)
    return uint8(1) + encode_proposal(item)


def _read_proposal_or_ref(r: Reader) -> ProposalOrRef:
    kind = r.uint8()
    if kind == 1:
        return read_proposal(r)
    if kind == 2:
        return ProposalRef(r.opaque())
    raise DecodeError(f"ProposalOrRef type {kind} is not defined")


@dataclass(frozen=True)
class Commit:
    proposals: tuple[ProposalOrRef, ...]
    path: UpdatePath | None

    def encode(self) -> bytes:
        return vector(_encode_proposal_or_ref(p) for p in self.proposals) + optional(
            None if self.path is None else self.path.encode()
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(_read_proposal_or_ref)), r.optional(UpdatePath.read))
