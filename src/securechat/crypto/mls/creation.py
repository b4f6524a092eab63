"""What exists before any message: key packages (§10) and one-member groups (§11)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from securechat.crypto.mls import hpke, key_schedule, labels
from securechat.crypto.mls.epoch import epoch_state
from securechat.crypto.mls.group_context import MLS10, Extension, GroupContext
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import (
    BASIC,
    Capabilities,
    Credential,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
)
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import DEFAULT_SUITE, CipherSuite, get_suite, random_bytes

DEFAULT_LIFETIME = 90 * 24 * 3600


@dataclass(frozen=True, repr=False)
class KeyPackagePrivate:
    init_private: bytes
    encryption_private: bytes
    signature_private: bytes


def default_capabilities(suite: CipherSuite) -> Capabilities:
    return Capabilities((MLS10,), (suite.id,), (), (), (BASIC,))


def sign_leaf(
    suite: CipherSuite, leaf: LeafNode, signature_private: bytes, group_id: bytes, index: int
) -> LeafNode:
    tbs = leaf.tbs(group_id, index)
    return replace(
        leaf, signature=labels.sign_with_label(suite, signature_private, b"LeafNodeTBS", tbs)
    )


def make_key_package(
    credential: Credential,
    signature_private: bytes,
    *,
    now: int,
    suite_id: int = DEFAULT_SUITE,
    lifetime: int = DEFAULT_LIFETIME,
    capabilities: Capabilities | None = None,
    leaf_extensions: tuple[Extension, ...] = (),
) -> tuple[KeyPackage, KeyPackagePrivate]:
    """A signed KeyPackage (§10) valid from an hour before `now` for `lifetime` seconds."""
    suite = get_suite(suite_id)
    init_private, init_public = hpke.generate_key_pair(suite.dh)
    enc_private, enc_public = hpke.generate_key_pair(suite.dh)
    leaf = LeafNode(
        enc_public,
        suite.signature.public_key(signature_private),
        credential,
        capabilities or default_capabilities(suite),
        LeafNodeSource.KEY_PACKAGE,
        (max(0, now - 3600), now + lifetime),
        b"",
        leaf_extensions,
        b"",
    )
    leaf = sign_leaf(suite, leaf, signature_private, b"", 0)
    unsigned = KeyPackage(suite.id, init_public, leaf, (), b"")
    signature = labels.sign_with_label(suite, signature_private, b"KeyPackageTBS", unsigned.tbs())
    return replace(unsigned, signature=signature), KeyPackagePrivate(
        init_private, enc_private, signature_private
    )


def create_group(
    credential: Credential,
    signature_private: bytes,
    *,
    now: int,
    suite_id: int = DEFAULT_SUITE,
    group_id: bytes | None = None,
    extensions: tuple[Extension, ...] = (),
    capabilities: Capabilities | None = None,
) -> GroupState:
    """A one-member group at epoch 0 (§11), by default on the X-Wing hybrid suite.
    The epoch secret comes from a fresh random joiner secret, which is as random as
    the fresh epoch secret §11 asks for."""
    suite = get_suite(suite_id)
    key_package, private = make_key_package(
        credential, signature_private, now=now, suite_id=suite_id, capabilities=capabilities
    )
    tree = RatchetTree(suite, (key_package.leaf_node,))
    context = GroupContext(
        suite.id, group_id or random_bytes(suite.nh), 0, tree.tree_hash(), b"", extensions
    )
    secrets = key_schedule.from_joiner(suite, random_bytes(suite.nh), None, context.encode())
    tag = key_schedule.confirmation_tag(suite, secrets.confirmation_key, b"")
    return epoch_state(
        context=context,
        tree=tree,
        own_leaf=0,
        signature_private=signature_private,
        node_keys={0: private.encryption_private},
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={},
    )
