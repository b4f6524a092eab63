"""Validation of leaf nodes, key packages and ratchet trees (RFC 9420 §7.3, §7.9.2,
§10.1, §12.4.3.1).

Signatures prove a leaf was made by the holder of its signature key; they do not
say whose key that is. That binding is the application's: every credential goes
through the caller's `CredentialValidator`, so the client can later check it
against the identity keys it already trusts. A validator returning False is a
CredentialRejected, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Self, TypeVar

from securechat.crypto.mls import tree_math
from securechat.crypto.mls.codec import Reader, decode, uint16, vector
from securechat.crypto.mls.errors import CredentialRejected, InvalidLeafNode, InvalidMessage
from securechat.crypto.mls.group_context import MLS10, Extension
from securechat.crypto.mls.leaf_node import Credential, KeyPackage, LeafNode, LeafNodeSource
from securechat.crypto.mls.ratchet_tree import KeyCounts, ParentNode, RatchetTree
from securechat.crypto.mls.suite import CipherSuite

APPLICATION_ID = 1
RATCHET_TREE = 2
REQUIRED_CAPABILITIES = 3
EXTERNAL_PUB = 4
EXTERNAL_SENDERS = 5
DEFAULT_EXTENSIONS = frozenset(
    {APPLICATION_ID, RATCHET_TREE, REQUIRED_CAPABILITIES, EXTERNAL_PUB, EXTERNAL_SENDERS}
)

CredentialValidator = Callable[[Credential, bytes], bool]
"""Called with a credential and the signature key it is presented with; True accepts."""

K = TypeVar("K")


@dataclass(frozen=True)
class Policy:
    """What processing needs from the application: whom to trust, the time (seconds
    since the epoch, for key package lifetimes; None skips that check, as a passive
    replay of old messages must) and the external PSKs it holds (psk_id -> secret)."""

    credential_validator: CredentialValidator
    now: int | None
    external_psks: Mapping[bytes, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class RequiredCapabilities:
    """The required_capabilities extension (§11.1)."""

    extension_types: tuple[int, ...] = ()
    proposal_types: tuple[int, ...] = ()
    credential_types: tuple[int, ...] = ()

    def encode(self) -> bytes:
        return b"".join(
            vector(uint16(v) for v in values)
            for values in (self.extension_types, self.proposal_types, self.credential_types)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(tuple(r.vector(Reader.uint16)) for _ in range(3)))

    def extension(self) -> Extension:
        return Extension(REQUIRED_CAPABILITIES, self.encode())


def find_extension(extensions: tuple[Extension, ...], extension_type: int) -> bytes | None:
    return next((e.extension_data for e in extensions if e.extension_type == extension_type), None)


def required_capabilities(extensions: tuple[Extension, ...]) -> RequiredCapabilities:
    data = find_extension(extensions, REQUIRED_CAPABILITIES)
    return RequiredCapabilities() if data is None else decode(data, RequiredCapabilities.read)


def check_credential(policy: Policy, leaf: LeafNode) -> None:
    if not policy.credential_validator(leaf.credential, leaf.signature_key):
        raise CredentialRejected("The credential of a leaf was not accepted by the application.")


def check_supports(leaf: LeafNode, suite: CipherSuite, extensions: tuple[Extension, ...]) -> None:
    """The leaf speaks mls10, the group's suite and everything the group requires."""
    caps = leaf.capabilities
    if MLS10 not in caps.versions:
        raise InvalidLeafNode("The leaf does not support MLS 1.0.")
    if suite.id not in caps.cipher_suites:
        raise InvalidLeafNode(f"The leaf does not support cipher suite {suite.id:#06x}.")
    required = required_capabilities(extensions)
    for wanted, have, what in (
        (required.extension_types, caps.extensions, "extension"),
        (required.proposal_types, caps.proposals, "proposal"),
        (required.credential_types, caps.credentials, "credential"),
    ):
        missing = [t for t in wanted if t not in have]
        if missing:
            raise InvalidLeafNode(f"The leaf lacks the required {what} types {missing}.")
    for ext in leaf.extensions:
        if (
            ext.extension_type not in DEFAULT_EXTENSIONS
            and ext.extension_type not in caps.extensions
        ):
            raise InvalidLeafNode(
                f"The leaf carries extension {ext.extension_type} it does not list."
            )
    if leaf.credential.credential_type not in caps.credentials:
        raise InvalidLeafNode("The leaf does not list its own credential type.")


def validate_leaf_node(
    suite: CipherSuite,
    leaf: LeafNode,
    *,
    tree: RatchetTree,
    extensions: tuple[Extension, ...],
    group_id: bytes,
    leaf_index: int,
    source: LeafNodeSource,
    policy: Policy,
    replacing: int | None = None,
    known: LeafIndex | None = None,
) -> None:
    """§7.3 for a leaf about to enter `tree` at `leaf_index` (`replacing` names the
    leaf it supersedes, whose signature key it may keep; `known` is the tree's
    LeafIndex when the caller already has it)."""
    if leaf.leaf_node_source != source:
        raise InvalidLeafNode(
            f"The leaf has source {leaf.leaf_node_source.name}, not {source.name}."
        )
    check_credential(policy, leaf)
    leaf.verify(suite, group_id, leaf_index)
    check_supports(leaf, suite, extensions)
    if source == LeafNodeSource.KEY_PACKAGE and policy.now is not None and leaf.lifetime:
        not_before, not_after = leaf.lifetime
        if not not_before <= policy.now <= not_after:
            raise InvalidLeafNode("The key package is outside its lifetime.")
    index = known if known is not None else LeafIndex.of(tree, replacing)
    holder = index.signature_holder(leaf.signature_key)
    if holder is not None:
        raise InvalidLeafNode(f"Leaf {holder} already uses this signature key.")
    if leaf.credential.credential_type not in index.supported_credentials:
        raise InvalidLeafNode("Some member does not support this credential type.")
    missing = index.credential_types - set(leaf.capabilities.credentials)
    if missing:
        raise InvalidLeafNode(
            f"The leaf does not support the members' credential types {sorted(missing)}."
        )
    if index.has_encryption_key(leaf.encryption_key):
        raise InvalidLeafNode("The leaf's encryption key is already in the tree.")


class LeafIndex:
    """What §7.3's uniqueness and credential-support checks need from the tree: the
    tree's KeyCounts (kept by the tree, read only) without the leaf being replaced,
    plus the leaves a proposal list adds, recorded in place by `add`."""

    def __init__(self, tree: RatchetTree, replacing: int | None = None) -> None:
        self._tree = tree
        self._counts = tree.key_counts
        self._replacing = replacing
        self._replaced = tree.leaf(replacing) if replacing is not None else None
        self._added = KeyCounts()
        self._added_at: dict[bytes, int] = {}

    @classmethod
    def of(cls, tree: RatchetTree, replacing: int | None = None) -> LeafIndex:
        """`replacing` is left out of the member checks (its signature key may be kept)."""
        if replacing is not None and not 0 <= replacing < tree.n_leaves:
            replacing = None
        return cls(tree, replacing)

    def add(self, leaf: LeafNode, leaf_index: int) -> None:
        self._added.count(leaf, 1)
        self._added_at[leaf.signature_key] = leaf_index

    def signature_holder(self, key: bytes) -> int | None:
        """The leaf that already uses `key`; found by a scan only when one does."""
        if key in self._added_at:
            return self._added_at[key]
        own = self._replaced.signature_key if self._replaced else None
        if not _members(self._counts.signature, key, own):
            return None
        return next(
            i
            for i in range(self._tree.n_leaves)
            if i != self._replacing
            and (leaf := self._tree.leaf(i)) is not None
            and leaf.signature_key == key
        )

    def has_encryption_key(self, key: bytes) -> bool:
        """Any node's, the replaced leaf's own included (a new leaf needs a new key)."""
        return key in self._counts.encryption or key in self._added.encryption

    @property
    def credential_types(self) -> set[int]:
        own = self._replaced.credential.credential_type if self._replaced else None
        types = self._counts.credential_types
        return {t for t in types if _members(types, t, own)} | set(self._added.credential_types)

    @property
    def supported_credentials(self) -> frozenset[int] | AllTypes:
        own = self._replaced.capabilities.credentials if self._replaced else None
        lists = self._counts.capabilities
        supported: frozenset[int] | AllTypes = ALL_TYPES
        for credentials in [c for c in lists if _members(lists, c, own)] + list(
            self._added.capabilities
        ):
            supported &= frozenset(credentials)
        return supported


def _members(counts: dict[K, int], key: K, own: K | None) -> int:
    """How many member leaves, the replaced one (whose value is `own`) left out, have `key`."""
    total = counts.get(key, 0)
    return total - 1 if own == key and total else total


class AllTypes:
    """The credential types an empty group supports: every one."""

    def __contains__(self, item: object) -> bool:
        return True

    def __and__(self, other: frozenset[int]) -> frozenset[int]:
        return other


ALL_TYPES = AllTypes()


def validate_key_package(
    suite: CipherSuite,
    key_package: KeyPackage,
    *,
    tree: RatchetTree,
    extensions: tuple[Extension, ...],
    policy: Policy,
    known: LeafIndex | None = None,
) -> None:
    """§10.1: signatures, suite, the leaf as a key_package leaf, a distinct init key."""
    key_package.verify(suite)
    validate_leaf_node(
        suite,
        key_package.leaf_node,
        tree=tree,
        extensions=extensions,
        group_id=b"",
        leaf_index=0,
        source=LeafNodeSource.KEY_PACKAGE,
        policy=policy,
        known=known,
    )
    if key_package.init_key == key_package.leaf_node.encryption_key:
        raise InvalidLeafNode("The key package's init key equals its encryption key.")


def validate_tree(
    tree: RatchetTree,
    group_id: bytes,
    tree_hash: bytes,
    policy: Policy,
    extensions: tuple[Extension, ...],
) -> None:
    """The checks a joiner runs on a tree it was handed (§12.4.3.1)."""
    if tree.tree_hash() != tree_hash:
        raise InvalidMessage("The ratchet tree does not match the GroupContext's tree hash.")
    tree.verify_parent_hashes()
    tree.verify_leaf_signatures(group_id)
    keys: set[bytes] = set()
    signers: set[bytes] = set()
    for x, node in enumerate(tree.nodes):
        if node is None:
            continue
        if node.encryption_key in keys:
            raise InvalidLeafNode(f"Node {x} repeats an encryption key.")
        keys.add(node.encryption_key)
        if isinstance(node, ParentNode):
            _check_unmerged(tree, x, node)
            continue
        if node.signature_key in signers:
            raise InvalidLeafNode(f"Node {x} repeats a signature key.")
        signers.add(node.signature_key)
        check_credential(policy, node)
        check_supports(node, tree.suite, extensions)


def _check_unmerged(tree: RatchetTree, p: int, node: ParentNode) -> None:
    """Each unmerged leaf lies below `p`, is a member, and is listed as unmerged by
    every non-blank parent between it and `p`."""
    for leaf_index in node.unmerged_leaves:
        x = tree_math.leaf_to_node(leaf_index)
        path = tree_math.direct_path(x, tree.n_leaves) if x < len(tree.nodes) else []
        if p not in path or tree.leaf(leaf_index) is None:
            raise InvalidMessage(f"Parent {p} lists leaf {leaf_index} as unmerged wrongly.")
        for q in path[: path.index(p)]:
            between = tree.nodes[q]
            if isinstance(between, ParentNode) and leaf_index not in between.unmerged_leaves:
                raise InvalidMessage(f"Parent {q} does not list unmerged leaf {leaf_index}.")
