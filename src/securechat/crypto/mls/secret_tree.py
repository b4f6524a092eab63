"""The secret tree and its hash ratchets (RFC 9420 §9).

The encryption_secret sits at the root; each node's secret yields its children's,
down to one handshake and one application ratchet per leaf. State is immutable:
every call returns a new tree, and the caller keeps it only once the message it
decrypted has authenticated (as python-doubleratchet does).

Deletion (§9.2): a node's secret is dropped as soon as its children's exist, a
leaf's once its two ratchets exist, and a ratchet's key once it has been handed
out. Out-of-order receipt is bounded: a generation may lie at most `max_forward`
ahead of the ratchet, and keys skipped over are kept only for the `window` most
recent generations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import TypeVar

from securechat.crypto.mls import labels, tree_math
from securechat.crypto.mls.errors import GenerationUnavailable, InvalidMessage
from securechat.crypto.mls.suite import CipherSuite

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_WINDOW = 128
DEFAULT_MAX_FORWARD = 1024


class RatchetType(Enum):
    HANDSHAKE = b"handshake"
    APPLICATION = b"application"


@dataclass(frozen=True, repr=False)
class RatchetKey:
    """The AEAD key and nonce of one generation of one sender's ratchet."""

    generation: int
    key: bytes
    nonce: bytes


def _frozen(items: dict[K, V]) -> Mapping[K, V]:
    return MappingProxyType(items)


@dataclass(frozen=True, repr=False)
class HashRatchet:
    """`secret` is the ratchet secret of `generation`, the next one not yet derived."""

    secret: bytes
    generation: int = 0
    skipped: Mapping[int, RatchetKey] = field(default_factory=lambda: _frozen({}))

    def _derive(self, suite: CipherSuite) -> tuple[RatchetKey, bytes]:
        g = self.generation
        key = labels.derive_tree_secret(suite, self.secret, b"key", g, suite.aead.nk)
        nonce = labels.derive_tree_secret(suite, self.secret, b"nonce", g, suite.aead.nn)
        following = labels.derive_tree_secret(suite, self.secret, b"secret", g, suite.nh)
        return RatchetKey(g, key, nonce), following

    def next_key(self, suite: CipherSuite) -> tuple[HashRatchet, RatchetKey]:
        """The key for sending: the next generation, which is then forgotten."""
        key, following = self._derive(suite)
        return replace(self, secret=following, generation=self.generation + 1), key

    def key_for(
        self, suite: CipherSuite, generation: int, window: int, max_forward: int
    ) -> tuple[HashRatchet, RatchetKey]:
        """The key for receiving `generation`; each generation's key is given out once."""
        if generation < self.generation:
            if generation not in self.skipped:
                raise GenerationUnavailable(
                    f"The key for generation {generation} was already used or has expired."
                )
            rest = {g: k for g, k in self.skipped.items() if g != generation}
            return replace(self, skipped=_frozen(rest)), self.skipped[generation]
        if generation - self.generation > max_forward:
            raise GenerationUnavailable(
                f"Generation {generation} lies more than {max_forward} ahead of the ratchet."
            )
        skipped = dict(self.skipped)
        ratchet = self
        while True:
            key, following = ratchet._derive(suite)
            ratchet = HashRatchet(following, ratchet.generation + 1)
            if key.generation == generation:
                break
            skipped[key.generation] = key
        oldest = ratchet.generation - window
        kept = {g: k for g, k in skipped.items() if g >= oldest}
        return replace(ratchet, skipped=_frozen(kept)), key


@dataclass(frozen=True, repr=False)
class SecretTree:
    suite: CipherSuite
    n_leaves: int
    nodes: Mapping[int, bytes]
    ratchets: Mapping[tuple[int, RatchetType], HashRatchet]
    window: int = DEFAULT_WINDOW
    max_forward: int = DEFAULT_MAX_FORWARD

    @classmethod
    def create(
        cls,
        suite: CipherSuite,
        encryption_secret: bytes,
        n_leaves: int,
        *,
        window: int = DEFAULT_WINDOW,
        max_forward: int = DEFAULT_MAX_FORWARD,
    ) -> SecretTree:
        if n_leaves < 1:
            raise ValueError("a secret tree has at least one leaf")
        width = 1 << (n_leaves - 1).bit_length()
        root = tree_math.root(width)
        return cls(
            suite, n_leaves, _frozen({root: encryption_secret}), _frozen({}), window, max_forward
        )

    def _ratchet(self, leaf: int, kind: RatchetType) -> tuple[SecretTree, HashRatchet]:
        if not 0 <= leaf < self.n_leaves:
            raise InvalidMessage(f"Leaf {leaf} is outside a tree of {self.n_leaves} leaves.")
        existing = self.ratchets.get((leaf, kind))
        if existing is not None:
            return self, existing
        target = tree_math.leaf_to_node(leaf)
        nodes = dict(self.nodes)
        width = 1 << (self.n_leaves - 1).bit_length()
        path = [target, *tree_math.direct_path(target, width)]
        start = next(x for x in path if x in nodes)
        while start != target:
            secret = nodes.pop(start)
            for child, label in (
                (tree_math.left(start), b"left"),
                (tree_math.right(start), b"right"),
            ):
                nodes[child] = labels.expand_with_label(
                    self.suite, secret, b"tree", label, self.suite.nh
                )
            start = tree_math.left(start) if target < start else tree_math.right(start)
        leaf_secret = nodes.pop(target)
        ratchets = dict(self.ratchets)
        for each in RatchetType:
            ratchets[(leaf, each)] = HashRatchet(
                labels.expand_with_label(self.suite, leaf_secret, each.value, b"", self.suite.nh)
            )
        tree = replace(self, nodes=_frozen(nodes), ratchets=_frozen(ratchets))
        return tree, ratchets[(leaf, kind)]

    def _with(self, leaf: int, kind: RatchetType, ratchet: HashRatchet) -> SecretTree:
        ratchets = dict(self.ratchets)
        ratchets[(leaf, kind)] = ratchet
        return replace(self, ratchets=_frozen(ratchets))

    def next_key(self, leaf: int, kind: RatchetType) -> tuple[SecretTree, RatchetKey]:
        """Our own next key to send with, as member `leaf`."""
        tree, ratchet = self._ratchet(leaf, kind)
        ratchet, key = ratchet.next_key(self.suite)
        return tree._with(leaf, kind, ratchet), key

    def key_for(
        self, leaf: int, kind: RatchetType, generation: int
    ) -> tuple[SecretTree, RatchetKey]:
        """The key of a received message from `leaf` at `generation`."""
        tree, ratchet = self._ratchet(leaf, kind)
        ratchet, key = ratchet.key_for(self.suite, generation, self.window, self.max_forward)
        return tree._with(leaf, kind, ratchet), key
