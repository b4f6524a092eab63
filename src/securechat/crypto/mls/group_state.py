"""A member's view of one MLS group as an explicit value, and its bytes (for the vault).

Everything a member needs to continue in the group is here, nothing else: the
GroupContext, the public tree, the private keys of the nodes it holds, the
current epoch's secret tree and the epoch secrets still in use (§9.2 deletion:
no epoch_secret, no encryption_secret once the secret tree exists, no earlier
epoch's secret tree), proposals cached for the epoch, and earlier epochs'
resumption PSKs for PreSharedKey proposals.

The encoding is this package's own, in the TLS presentation language, behind a
version number: STATE_VERSION 1 is the only one so far. It holds private keys;
the caller keeps it encrypted (the vault does). `encode_beside` writes an ended
epoch's state kept next to the current one with its tree as the nodes that
differ (a Commit changes a few nodes of a tree of up to thousands of members):

    struct { uint32 index; optional<Node> node; } ChangedNode;
    struct { ChangedNode changed<V>; uint32 width; } TreeBeside;

`encode_apart` writes the state with no tree at all (the tree field empty), for
a caller that stores the tree on its own: a message moves the secret tree on
and leaves the ratchet tree as it is, so what a message changes stays small
however large the group (`decode_apart` is given the tree back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from securechat.crypto.mls import tree_math
from securechat.crypto.mls.codec import (
    Reader,
    opaque,
    optional,
    uint8,
    uint16,
    uint32,
    uint64,
    vector,
)
from securechat.crypto.mls.errors import DecodeError, InvalidState, MLSError
from securechat.crypto.mls.framing import Sender
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.leaf_node import Credential, LeafNode
from securechat.crypto.mls.proposals import (
    Proposal,
    ReInit,
    encode_proposal,
    read_proposal,
)
from securechat.crypto.mls.ratchet_tree import RatchetTree, encode_node, read_node
from securechat.crypto.mls.secret_tree import HashRatchet, RatchetKey, RatchetType, SecretTree
from securechat.crypto.mls.suite import CipherSuite, get_suite

STATE_VERSION = 1
RESUMPTION_PSKS_KEPT = 16


@dataclass(frozen=True)
class Member:
    leaf_index: int
    credential: Credential
    signature_key: bytes


@dataclass(frozen=True, repr=False)
class CachedProposal:
    """A proposal received (or sent) this epoch, kept until a Commit names it."""

    ref: bytes
    sender: Sender
    proposal: Proposal


@dataclass(frozen=True, repr=False)
class PendingUpdate:
    """Our own Update proposal: the new leaf and its HPKE private key."""

    ref: bytes
    leaf: LeafNode
    encryption_private: bytes


def _frozen(d: Mapping[int, bytes]) -> Mapping[int, bytes]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, repr=False)
class GroupState:
    context: GroupContext
    tree: RatchetTree
    own_leaf: int
    signature_private: bytes
    node_keys: Mapping[int, bytes]
    """Private HPKE keys of the nodes we hold, our leaf included (node index -> key)."""
    secret_tree: SecretTree
    sender_data_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes
    confirmation_tag: bytes
    interim_transcript_hash: bytes
    proposals: tuple[CachedProposal, ...] = ()
    pending_updates: tuple[PendingUpdate, ...] = ()
    resumption_psks: Mapping[int, bytes] = field(default_factory=lambda: _frozen({}))
    """Earlier epochs' resumption PSKs (epoch -> psk), the newest RESUMPTION_PSKS_KEPT."""
    reinit: ReInit | None = None
    """Set once a ReInit was committed: the group is closed to new messages."""

    @property
    def suite(self) -> CipherSuite:
        return self.tree.suite

    @property
    def epoch(self) -> int:
        return self.context.epoch

    @property
    def group_id(self) -> bytes:
        return self.context.group_id

    @property
    def roster(self) -> tuple[Member, ...]:
        return tuple(
            Member(i, leaf.credential, leaf.signature_key)
            for i in range(self.tree.n_leaves)
            if (leaf := self.tree.leaf(i)) is not None
        )

    def encode(self) -> bytes:
        return uint16(STATE_VERSION) + _encode_v1(self, opaque(self.tree.encode()))

    def encode_beside(self, base: GroupState) -> bytes:
        """This state with its tree written as the nodes that differ from `base`'s;
        `decode_beside` with the same base reads it back."""
        return uint16(STATE_VERSION) + _encode_v1(self, _tree_beside(self.tree, base.tree))

    def encode_apart(self) -> bytes:
        """This state without its tree; `decode_apart` with the same tree reads it back."""
        return uint16(STATE_VERSION) + _encode_v1(self, b"")

    @classmethod
    def decode_apart(cls, data: bytes, tree_of: Callable[[CipherSuite], RatchetTree]) -> GroupState:
        """Any corruption is InvalidState; `tree_of` is given the state's suite."""
        return cls._decode(data, lambda suite, _: tree_of(suite))

    @classmethod
    def decode_beside(cls, data: bytes, base: GroupState) -> GroupState:
        """Any corruption is InvalidState."""
        return cls._decode(data, lambda suite, r: _read_tree_beside(suite, r, base.tree))

    @classmethod
    def decode(cls, data: bytes) -> GroupState:
        """Any corruption is InvalidState; a future version is named as such."""
        return cls._decode(data, lambda suite, r: RatchetTree.decode(suite, r.opaque()))

    @classmethod
    def _decode(
        cls, data: bytes, read_tree: Callable[[CipherSuite, Reader], RatchetTree]
    ) -> GroupState:
        r = Reader(data)
        try:
            version = r.uint16()
            if version != STATE_VERSION:
                raise InvalidState(f"Group state version {version} is not one this build reads.")
            state = _read_v1(cls, r, read_tree)
            r.finish()
        except InvalidState:
            raise
        except (MLSError, ValueError) as exc:
            raise InvalidState(f"The group state does not decode: {exc}") from None
        return state


def _encode_secret_tree(tree: SecretTree) -> bytes:
    ratchets = []
    for (leaf, kind), ratchet in sorted(
        tree.ratchets.items(), key=lambda kv: (kv[0][0], kv[0][1].value)
    ):
        skipped = vector(
            uint32(g) + opaque(k.key) + opaque(k.nonce) for g, k in sorted(ratchet.skipped.items())
        )
        ratchets.append(
            uint32(leaf)
            + uint8(0 if kind == RatchetType.HANDSHAKE else 1)
            + opaque(ratchet.secret)
            + uint32(ratchet.generation)
            + skipped
        )
    return (
        uint32(tree.n_leaves)
        + uint32(tree.window)
        + uint32(tree.max_forward)
        + vector(uint32(x) + opaque(s) for x, s in sorted(tree.nodes.items()))
        + vector(ratchets)
    )


def _read_secret_tree(suite: CipherSuite, r: Reader) -> SecretTree:
    n_leaves, window, max_forward = r.uint32(), r.uint32(), r.uint32()
    nodes = dict(r.vector(lambda i: (i.uint32(), i.opaque())))

    def ratchet(i: Reader) -> tuple[tuple[int, RatchetType], HashRatchet]:
        leaf, kind = i.uint32(), i.uint8()
        if kind > 1:
            raise DecodeError("unknown ratchet type")
        secret, generation = i.opaque(), i.uint32()
        skipped = {
            g: RatchetKey(g, key, nonce)
            for g, key, nonce in i.vector(lambda j: (j.uint32(), j.opaque(), j.opaque()))
        }
        which = RatchetType.HANDSHAKE if kind == 0 else RatchetType.APPLICATION
        return (leaf, which), HashRatchet(secret, generation, MappingProxyType(skipped))

    ratchets = dict(r.vector(ratchet))
    if n_leaves < 1:
        raise DecodeError("a secret tree has at least one leaf")
    return SecretTree(
        suite, n_leaves, MappingProxyType(nodes), MappingProxyType(ratchets), window, max_forward
    )


def _tree_beside(tree: RatchetTree, base: RatchetTree) -> bytes:
    changed = (
        uint32(i) + optional(None if node is None else encode_node(node))
        for i, node in enumerate(tree.nodes)
        if i >= len(base.nodes) or not (node is base.nodes[i] or node == base.nodes[i])
    )
    return vector(changed) + uint32(len(tree.nodes))


def _read_tree_beside(suite: CipherSuite, r: Reader, base: RatchetTree) -> RatchetTree:
    changed = r.vector(lambda i: (i.uint32(), i.optional(read_node)))
    width = r.uint32()
    # A full tree's last non-blank node is in its right half: a width past twice
    # the nodes known is corruption, not a reason to allocate.
    known = max((i for i, _ in changed), default=0) + 1
    if width > 2 * max(len(base.nodes), known) + 1:
        raise DecodeError(f"a kept tree of {width} nodes is wider than its nodes allow")
    nodes = list(base.nodes[:width]) + [None] * (width - len(base.nodes))
    for index, node in changed:
        if index >= width:
            raise DecodeError(f"node {index} is outside a tree of {width} nodes")
        nodes[index] = node
    return RatchetTree(suite, tuple(nodes))


def _encode_v1(s: GroupState, tree: bytes) -> bytes:
    return b"".join(
        (
            s.context.encode(),
            tree,
            uint32(s.own_leaf),
            opaque(s.signature_private),
            vector(uint32(x) + opaque(k) for x, k in sorted(s.node_keys.items())),
            _encode_secret_tree(s.secret_tree),
            *(
                opaque(v)
                for v in (
                    s.sender_data_secret,
                    s.exporter_secret,
                    s.external_secret,
                    s.membership_key,
                    s.resumption_psk,
                    s.epoch_authenticator,
                    s.init_secret,
                    s.confirmation_tag,
                    s.interim_transcript_hash,
                )
            ),
            vector(
                opaque(p.ref) + p.sender.encode() + encode_proposal(p.proposal) for p in s.proposals
            ),
            vector(
                opaque(u.ref) + u.leaf.encode() + opaque(u.encryption_private)
                for u in s.pending_updates
            ),
            vector(uint64(e) + opaque(k) for e, k in sorted(s.resumption_psks.items())),
            optional(None if s.reinit is None else s.reinit.encode_body()),
        )
    )


def _read_v1(
    cls: type[GroupState], r: Reader, read_tree: Callable[[CipherSuite, Reader], RatchetTree]
) -> GroupState:
    context = GroupContext.read(r)
    suite = get_suite(context.cipher_suite)
    tree = read_tree(suite, r)
    own_leaf = r.uint32()
    if tree.leaf(own_leaf) is None if own_leaf < tree.n_leaves else True:
        raise DecodeError("our own leaf is not in the tree")
    signature_private = r.opaque()
    node_keys = dict(r.vector(lambda i: (i.uint32(), i.opaque())))
    if tree_math.leaf_to_node(own_leaf) not in node_keys:
        raise DecodeError("the private key of our own leaf is missing")
    secret_tree = _read_secret_tree(suite, r)
    (
        sender_data_secret,
        exporter_secret,
        external_secret,
        membership_key,
        resumption_psk,
        epoch_authenticator,
        init_secret,
        confirmation_tag,
        interim_transcript_hash,
    ) = (r.opaque() for _ in range(9))
    proposals = tuple(
        r.vector(lambda i: CachedProposal(i.opaque(), Sender.read(i), read_proposal(i)))
    )
    pending = tuple(r.vector(lambda i: PendingUpdate(i.opaque(), LeafNode.read(i), i.opaque())))
    resumption = dict(r.vector(lambda i: (i.uint64(), i.opaque())))
    reinit = r.optional(ReInit.read)
    return cls(
        context,
        tree,
        own_leaf,
        signature_private,
        _frozen(node_keys),
        secret_tree,
        sender_data_secret,
        exporter_secret,
        external_secret,
        membership_key,
        resumption_psk,
        epoch_authenticator,
        init_secret,
        confirmation_tag,
        interim_transcript_hash,
        proposals=proposals,
        pending_updates=pending,
        resumption_psks=_frozen(resumption),
        reinit=reinit,
    )
