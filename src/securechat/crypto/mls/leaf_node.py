"""Credentials, leaf nodes and key packages (RFC 9420 §5.3, §7.2, §10).

Only their encoding lives here: which leaf is valid where (§7.3, §10.1) is a
question for the tree and group logic, with the signature helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Self

from securechat.crypto.mls import labels
from securechat.crypto.mls.codec import (
    Reader,
    decode,
    opaque,
    uint8,
    uint16,
    uint32,
    uint64,
    vector,
)
from securechat.crypto.mls.errors import DecodeError, InvalidMessage, UnsupportedCipherSuite
from securechat.crypto.mls.group_context import (
    Extension,
    encode_extensions,
    read_extensions,
    read_version,
)
from securechat.crypto.mls.suite import CipherSuite

BASIC = 1
X509 = 2


@dataclass(frozen=True)
class Credential:
    """A basic identity or an X.509 chain (§5.3); other types are not decoded."""

    credential_type: int
    identity: bytes = b""
    certificates: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        if self.credential_type == BASIC:
            return uint16(BASIC) + opaque(self.identity)
        return uint16(X509) + vector(opaque(c) for c in self.certificates)

    @classmethod
    def read(cls, r: Reader) -> Self:
        kind = r.uint16()
        if kind == BASIC:
            return cls(kind, identity=r.opaque())
        if kind == X509:
            return cls(kind, certificates=tuple(r.vector(Reader.opaque)))
        raise DecodeError(f"credential type {kind} is not supported")


def _u16_list(values: tuple[int, ...]) -> bytes:
    return vector(uint16(v) for v in values)


def _read_u16_list(r: Reader) -> tuple[int, ...]:
    return tuple(r.vector(Reader.uint16))


@dataclass(frozen=True)
class Capabilities:
    versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    proposals: tuple[int, ...]
    credentials: tuple[int, ...]

    def encode(self) -> bytes:
        return b"".join(
            _u16_list(v)
            for v in (
                self.versions,
                self.cipher_suites,
                self.extensions,
                self.proposals,
                self.credentials,
            )
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(_read_u16_list(r) for _ in range(5)))


class LeafNodeSource(IntEnum):
    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


@dataclass(frozen=True)
class LeafNode:
    """A member's leaf (§7.2): `lifetime` only for key_package, `parent_hash` for commit."""

    encryption_key: bytes
    signature_key: bytes
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: tuple[int, int] | None
    parent_hash: bytes
    extensions: tuple[Extension, ...]
    signature: bytes

    def __post_init__(self) -> None:
        if (self.lifetime is None) == (self.leaf_node_source == LeafNodeSource.KEY_PACKAGE):
            raise ValueError("a lifetime is required for, and only for, key_package leaves")

    def _content(self) -> bytes:
        out = (
            opaque(self.encryption_key)
            + opaque(self.signature_key)
            + self.credential.encode()
            + self.capabilities.encode()
            + uint8(self.leaf_node_source)
        )
        if self.lifetime is not None:
            out += uint64(self.lifetime[0]) + uint64(self.lifetime[1])
        elif self.leaf_node_source == LeafNodeSource.COMMIT:
            out += opaque(self.parent_hash)
        return out + encode_extensions(self.extensions)

    def encode(self) -> bytes:
        return self._encoding

    @cached_property
    def _encoding(self) -> bytes:
        """A leaf outlives many epochs unchanged, and each tree hash over it and each
        Welcome's ratchet_tree encodes it again: 1,000 leaves took ~15 ms a Welcome."""
        return self._content() + opaque(self.signature)

    def tbs(self, group_id: bytes, leaf_index: int) -> bytes:
        """LeafNodeTBS: update and commit leaves are bound to their group and position."""
        if self.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
            return self._content()
        return self._content() + opaque(group_id) + uint32(leaf_index)

    def verify(self, suite: CipherSuite, group_id: bytes, leaf_index: int) -> None:
        labels.verify_with_label(
            suite,
            self.signature_key,
            b"LeafNodeTBS",
            self.tbs(group_id, leaf_index),
            self.signature,
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        encryption_key, signature_key = r.opaque(), r.opaque()
        credential, capabilities = Credential.read(r), Capabilities.read(r)
        source_value = r.uint8()
        try:
            source = LeafNodeSource(source_value)
        except ValueError:
            raise DecodeError(f"leaf node source {source_value} is not defined") from None
        lifetime = (r.uint64(), r.uint64()) if source == LeafNodeSource.KEY_PACKAGE else None
        parent_hash = r.opaque() if source == LeafNodeSource.COMMIT else b""
        return cls(
            encryption_key,
            signature_key,
            credential,
            capabilities,
            source,
            lifetime,
            parent_hash,
            read_extensions(r),
            r.opaque(),
        )


@dataclass(frozen=True)
class KeyPackage:
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: tuple[Extension, ...]
    signature: bytes

    def tbs(self) -> bytes:
        return (
            uint16(1)
            + uint16(self.cipher_suite)
            + opaque(self.init_key)
            + self.leaf_node.encode()
            + encode_extensions(self.extensions)
        )

    def encode(self) -> bytes:
        return self.tbs() + opaque(self.signature)

    def verify(self, suite: CipherSuite) -> None:
        """The package and its leaf are each signed by the leaf's signature key (§10.1)."""
        if self.cipher_suite != suite.id:
            raise UnsupportedCipherSuite("The key package is for another cipher suite.")
        if self.leaf_node.leaf_node_source != LeafNodeSource.KEY_PACKAGE:
            raise InvalidMessage("A key package's leaf must have the key_package source.")
        key = self.leaf_node.signature_key
        labels.verify_with_label(suite, key, b"KeyPackageTBS", self.tbs(), self.signature)
        self.leaf_node.verify(suite, b"", 0)

    def ref(self, suite: CipherSuite) -> bytes:
        """KeyPackageRef (§5.2)."""
        return labels.ref_hash(suite, b"MLS 1.0 KeyPackage Reference", self.encode())

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_version(r)
        return cls(r.uint16(), r.opaque(), LeafNode.read(r), read_extensions(r), r.opaque())

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return decode(data, cls.read)
