"""Ratchet tree nodes and the `ratchet_tree` encoding (RFC 9420 §7.1, §12.4.3.3).

Only the encoding so far: tree hashes, parent hashes, resolution and the
operations on the tree are not implemented yet (docs/mls.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from securechat.crypto.mls.codec import Reader, decode, opaque, optional, uint8, uint32, vector
from securechat.crypto.mls.errors import DecodeError
from securechat.crypto.mls.leaf_node import LeafNode

LEAF = 1
PARENT = 2


@dataclass(frozen=True)
class ParentNode:
    encryption_key: bytes
    parent_hash: bytes
    unmerged_leaves: tuple[int, ...]

    def encode(self) -> bytes:
        return (
            opaque(self.encryption_key)
            + opaque(self.parent_hash)
            + vector(uint32(i) for i in self.unmerged_leaves)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque(), tuple(r.vector(Reader.uint32)))


Node = LeafNode | ParentNode


def encode_node(node: Node) -> bytes:
    if isinstance(node, LeafNode):
        return uint8(LEAF) + node.encode()
    return uint8(PARENT) + node.encode()


def read_node(r: Reader) -> Node:
    kind = r.uint8()
    if kind == LEAF:
        return LeafNode.read(r)
    if kind == PARENT:
        return ParentNode.read(r)
    raise DecodeError(f"node type {kind} is not defined")


def encode_ratchet_tree(nodes: tuple[Node | None, ...]) -> bytes:
    """`optional<Node> ratchet_tree<V>`, with trailing blanks dropped as §12.4.3.3 asks."""
    end = len(nodes)
    while end and nodes[end - 1] is None:
        end -= 1
    return vector(optional(None if n is None else encode_node(n)) for n in nodes[:end])


def decode_ratchet_tree(data: bytes) -> tuple[Node | None, ...]:
    """The nodes in array order, leaves at even indices; a trailing blank is refused."""
    nodes = tuple(decode(data, lambda r: r.vector(lambda inner: inner.optional(read_node))))
    if not nodes or nodes[-1] is None:
        raise DecodeError("a ratchet tree must end with a non-blank node")
    for index, node in enumerate(nodes):
        if node is not None and isinstance(node, LeafNode) != (index % 2 == 0):
            raise DecodeError(f"node {index} has the wrong type for its position")
    return nodes
