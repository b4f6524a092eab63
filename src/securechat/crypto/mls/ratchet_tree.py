"""The public ratchet tree (RFC 9420 §4.1, §7): nodes, their encoding, resolution,
tree hashes, and the checks a joiner runs on a tree it is given (§7.9.2, §12.4.3.1).

The tree is held full, as RFC 9420 defines it: 2^d leaves, blanks included, so the
array arithmetic of tree_math applies unchanged. Changes return a new tree (§7.7,
§12.1); UpdatePaths are created and merged in treekem.py.

A change is built with `derive`, which hands the new tree every subtree hash of the
old one whose subtree holds no changed node (nodes are immutable, so "changed" is
"not the same object"). A Commit changes one leaf and its direct path, so the next
epoch's tree hash and the parent hashes along a path cost O(log n) hashes instead of
a pass over the whole tree.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import compress, repeat
from typing import Self, TypeVar

from securechat.crypto.mls import tree_math
from securechat.crypto.mls.codec import Reader, decode, opaque, optional, uint8, uint32, vector
from securechat.crypto.mls.errors import DecodeError, InvalidMessage
from securechat.crypto.mls.leaf_node import LeafNode, LeafNodeSource
from securechat.crypto.mls.suite import CipherSuite

LEAF = 1
PARENT = 2

K = TypeVar("K")


@dataclass(frozen=True)
class ParentNode:
    encryption_key: bytes
    parent_hash: bytes
    unmerged_leaves: tuple[int, ...]

    def encode(self) -> bytes:
        return self._encoding

    @cached_property
    def _encoding(self) -> bytes:
        """Kept, as a leaf's is: every Welcome's ratchet_tree encodes the node again."""
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


class KeyCounts:
    """How often each key and credential setting occurs among a tree's nodes: what the
    uniqueness and credential-support checks of §7.3 ask of the whole tree. `derive`
    carries it from tree to tree, adjusted for the changed nodes, so a Commit's checks
    stop costing a pass over every member."""

    __slots__ = ("capabilities", "credential_types", "encryption", "signature")

    def __init__(self) -> None:
        self.encryption: dict[bytes, int] = {}
        """Every non-blank node's encryption key."""
        self.signature: dict[bytes, int] = {}
        self.credential_types: dict[int, int] = {}
        self.capabilities: dict[tuple[int, ...], int] = {}
        """Each leaf's capabilities.credentials list, as sent."""

    @classmethod
    def of(cls, nodes: Iterable[Node | None]) -> KeyCounts:
        counts = cls()
        for node in nodes:
            counts.count(node, 1)
        return counts

    def count(self, node: Node | None, step: int) -> None:
        """Add (`step` 1) or take away (-1) one node's contribution."""
        if node is None:
            return
        _bump(self.encryption, node.encryption_key, step)
        if isinstance(node, LeafNode):
            _bump(self.signature, node.signature_key, step)
            _bump(self.credential_types, node.credential.credential_type, step)
            _bump(self.capabilities, node.capabilities.credentials, step)

    def changed(self, pairs: Iterable[tuple[Node | None, Node | None]]) -> KeyCounts:
        """A copy with each (old, new) node pair swapped; the copies are made in C."""
        out = KeyCounts()
        out.encryption = dict(self.encryption)
        out.signature = dict(self.signature)
        out.credential_types = dict(self.credential_types)
        out.capabilities = dict(self.capabilities)
        for old, new in pairs:
            out.count(old, -1)
            out.count(new, 1)
        return out


def _bump(counts: dict[K, int], key: K, step: int) -> None:
    total = counts.get(key, 0) + step
    if total:
        counts[key] = total
    else:
        del counts[key]


def _subtree(x: int) -> range:
    """The node indices under `x`, itself included."""
    span = (1 << tree_math.level(x)) - 1
    return range(x - span, x + span + 1)


@dataclass(frozen=True)
class RatchetTree:
    """A full tree of `nodes` (None = blank) for one cipher suite."""

    suite: CipherSuite
    nodes: tuple[Node | None, ...]
    _hashes: dict[tuple[int, frozenset[int]], bytes] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Tree hashes computed with leaves left out (parent-hash checks), for this tree only."""
    _plain: list[bytes | None] = field(default_factory=list, compare=False, repr=False)
    """Node index -> tree hash of its subtree, None until computed; `derive` passes it on."""
    _counts: KeyCounts | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        width = len(self.nodes)
        if width & (width + 1):
            raise ValueError("a full ratchet tree has 2^(d+1) - 1 nodes")
        if len(self._plain) != width:
            object.__setattr__(self, "_plain", [None] * width)
        # Every tree change builds a new tree, so this check runs on each: the type
        # sets are gathered in C, and only a misplaced node costs a Python-level scan.
        leaf_types = set(map(type, self.nodes[0::2]))
        parent_types = set(map(type, self.nodes[1::2]))
        if leaf_types <= {LeafNode, type(None)} and parent_types <= {ParentNode, type(None)}:
            return
        for index, node in enumerate(self.nodes):
            if node is not None and isinstance(node, LeafNode) != tree_math.is_leaf(index):
                raise InvalidMessage(f"Node {index} has the wrong type for its position.")
        raise InvalidMessage("A node is of an unknown type.")

    @classmethod
    def from_nodes(cls, suite: CipherSuite, nodes: tuple[Node | None, ...]) -> RatchetTree:
        """Extend a decoded `ratchet_tree` to the right with the fewest blanks (§12.4.3.3)."""
        leaves = 1 << ((len(nodes) + 1) // 2 - 1).bit_length()
        return cls(suite, nodes + (None,) * (tree_math.node_width(leaves) - len(nodes)))

    @classmethod
    def decode(cls, suite: CipherSuite, data: bytes) -> RatchetTree:
        return cls.from_nodes(suite, decode_ratchet_tree(data))

    @property
    def n_leaves(self) -> int:
        return (len(self.nodes) + 1) // 2

    @cached_property
    def root(self) -> int:
        return tree_math.root(self.n_leaves)

    def encode(self) -> bytes:
        return encode_ratchet_tree(self.nodes)

    def leaf(self, leaf_index: int) -> LeafNode | None:
        node = self.nodes[tree_math.leaf_to_node(leaf_index)]
        return node if isinstance(node, LeafNode) else None

    def encryption_key(self, x: int) -> bytes:
        """The HPKE public key of non-blank node `x`."""
        node = self.nodes[x]
        if node is None:
            raise ValueError(f"node {x} is blank")
        return node.encryption_key

    def resolution(self, x: int) -> list[int]:
        """The non-blank nodes covering the subtree of `x` (§4.1.1), as node indices."""
        node = self.nodes[x]
        if isinstance(node, ParentNode):
            return [x, *(tree_math.leaf_to_node(i) for i in node.unmerged_leaves)]
        if node is not None:
            return [x]
        if tree_math.is_leaf(x):
            return []
        return self.resolution(tree_math.left(x)) + self.resolution(tree_math.right(x))

    def derive(self, nodes: tuple[Node | None, ...]) -> RatchetTree:
        """The tree of `nodes`, keeping this tree's hashes of the subtrees that hold no
        changed node. The comparison runs in C: linear, but a few nanoseconds a node."""
        width = len(nodes)
        common = min(width, len(self.nodes))
        plain = self._plain[:common] + [None] * (width - common)
        n_leaves = (width + 1) // 2
        changed = list(compress(range(common), map(operator.is_not, self.nodes, nodes)))
        for x in changed:
            plain[x] = None
            for p in tree_math.direct_path(x, n_leaves):
                plain[p] = None
        counts = None
        if self._counts is not None:
            pairs: list[tuple[Node | None, Node | None]] = [
                (self.nodes[x], nodes[x]) for x in changed
            ]
            pairs += [(node, None) for node in self.nodes[common:]]
            counts = self._counts.changed(pairs)
        return RatchetTree(self.suite, nodes, _plain=plain, _counts=counts)

    @property
    def key_counts(self) -> KeyCounts:
        """Counted once per loaded tree, then carried through `derive` (read only)."""
        if self._counts is None:
            object.__setattr__(self, "_counts", KeyCounts.of(self.nodes))
        assert self._counts is not None
        return self._counts

    def tree_hash(self, x: int | None = None, without: frozenset[int] = frozenset()) -> bytes:
        """The tree hash of `x` (default the root), with the leaves in `without` blanked
        and dropped from every unmerged_leaves list, as original sibling hashes need."""
        x = self.root if x is None else x
        if not without:
            cached = self._plain[x]
            if cached is None:
                cached = self._plain[x] = self.suite.kdf.hash(self._tree_hash_input(x, without))
            return cached
        key = (x, without)
        if key not in self._hashes:
            self._hashes[key] = self.suite.kdf.hash(self._tree_hash_input(x, without))
        return self._hashes[key]

    def _tree_hash_input(self, x: int, without: frozenset[int]) -> bytes:
        node = self.nodes[x]
        if tree_math.is_leaf(x):
            leaf_index = tree_math.node_to_leaf(x)
            present = None if node is None or leaf_index in without else encode_node(node)[1:]
            return uint8(LEAF) + uint32(leaf_index) + optional(present)
        parent_node = None
        if isinstance(node, ParentNode):
            unmerged = tuple(i for i in node.unmerged_leaves if i not in without)
            parent_node = ParentNode(node.encryption_key, node.parent_hash, unmerged).encode()
        return (
            uint8(PARENT)
            + optional(parent_node)
            + opaque(self.tree_hash(tree_math.left(x), without))
            + opaque(self.tree_hash(tree_math.right(x), without))
        )

    def parent_hash(self, p: int, sibling: int) -> bytes:
        """The parent hash of parent node `p` with copath child `sibling` (§7.9)."""
        node = self.nodes[p]
        if not isinstance(node, ParentNode):
            raise ValueError(f"node {p} is not a non-blank parent")
        return self.parent_hash_of(node, sibling)

    def parent_hash_of(self, node: ParentNode, sibling: int) -> bytes:
        """The parent hash of `node` placed above this tree's subtree `sibling`: what a
        committer computes before the node is in any tree (§7.9)."""
        original = self.tree_hash(sibling, frozenset(node.unmerged_leaves))
        return self.suite.kdf.hash(
            opaque(node.encryption_key) + opaque(node.parent_hash) + opaque(original)
        )

    def _parent_hash_field(self, x: int) -> bytes | None:
        node = self.nodes[x]
        if isinstance(node, ParentNode):
            return node.parent_hash
        if isinstance(node, LeafNode) and node.leaf_node_source == LeafNodeSource.COMMIT:
            return node.parent_hash
        return None

    def _parent_hash_valid_from(self, d: int, p: int, expected: dict[int, bytes]) -> bool:
        c, s = (tree_math.left(p), tree_math.right(p))
        if d > p:
            c, s = s, c
        if self._parent_hash_field(d) != expected.setdefault(s, self.parent_hash(p, s)):
            return False
        resolution = self.resolution(c)
        if d not in resolution:
            return False
        node = self.nodes[p]
        if not isinstance(node, ParentNode):
            raise ValueError(f"node {p} is not a non-blank parent")
        under_c = set(_subtree(c))
        unmerged = {tree_math.leaf_to_node(i) for i in node.unmerged_leaves} & under_c
        return unmerged == set(resolution) - {d}

    def verify_parent_hashes(self) -> None:
        """Each non-blank parent must be parent-hash valid through exactly one descendant
        (§7.9.2, the top-down check), so no parent key was planted from outside."""
        for p, node in enumerate(self.nodes):
            if not isinstance(node, ParentNode):
                continue
            expected: dict[int, bytes] = {}
            chains = [
                d
                for d in _subtree(p)
                if d != p
                and self.nodes[d] is not None
                and self._parent_hash_valid_from(d, p, expected)
            ]
            if len(chains) != 1:
                raise InvalidMessage(f"Parent node {p} is not parent-hash valid.")

    def verify_leaf_signatures(self, group_id: bytes) -> None:
        """Every member's leaf carries a valid signature by its own key (§7.3)."""
        for leaf_index in range(self.n_leaves):
            leaf = self.leaf(leaf_index)
            if leaf is not None:
                leaf.verify(self.suite, group_id, leaf_index)

    def _with_nodes(self, nodes: list[Node | None]) -> RatchetTree:
        return self.derive(tuple(nodes))

    def _blank_direct_path(self, nodes: list[Node | None], leaf_index: int) -> None:
        for x in tree_math.direct_path(tree_math.leaf_to_node(leaf_index), self.n_leaves):
            nodes[x] = None

    def add_leaf(self, leaf: LeafNode) -> tuple[RatchetTree, int]:
        """Put `leaf` in the leftmost blank leaf, doubling the tree when none is left,
        and list it as unmerged in each non-blank parent above it (§12.1.1)."""
        tree = self
        # The leftmost blank leaf, found in C: a bulk Add must not rescan in Python.
        blanks = list(map(operator.is_, self.nodes[0::2], repeat(None)))
        blank = blanks.index(True) if True in blanks else None
        if blank is None:
            blank = self.n_leaves
            tree = self._with_nodes([*self.nodes, *(None,) * (len(self.nodes) + 1)])
        nodes = list(tree.nodes)
        x = tree_math.leaf_to_node(blank)
        nodes[x] = leaf
        for p in tree_math.direct_path(x, tree.n_leaves):
            parent = nodes[p]
            if isinstance(parent, ParentNode):
                nodes[p] = replace(parent, unmerged_leaves=(*parent.unmerged_leaves, blank))
        return tree._with_nodes(nodes), blank

    def update_leaf(self, leaf_index: int, leaf: LeafNode) -> RatchetTree:
        """Replace a member's leaf and blank its direct path (§12.1.2)."""
        if self.leaf(leaf_index) is None:
            raise InvalidMessage(f"Leaf {leaf_index} is blank and cannot be updated.")
        nodes = list(self.nodes)
        nodes[tree_math.leaf_to_node(leaf_index)] = leaf
        self._blank_direct_path(nodes, leaf_index)
        return self._with_nodes(nodes)

    def remove_leaf(self, leaf_index: int) -> RatchetTree:
        """Blank a member's leaf and direct path, then drop empty right halves (§12.1.3)."""
        if not 0 <= leaf_index < self.n_leaves or self.leaf(leaf_index) is None:
            raise InvalidMessage(f"Leaf {leaf_index} is not a member and cannot be removed.")
        nodes = list(self.nodes)
        nodes[tree_math.leaf_to_node(leaf_index)] = None
        self._blank_direct_path(nodes, leaf_index)
        while len(nodes) > 1 and all(n is None for n in nodes[(len(nodes) + 1) // 2 :]):
            nodes = nodes[: (len(nodes) - 1) // 2]
        return self._with_nodes(nodes)
