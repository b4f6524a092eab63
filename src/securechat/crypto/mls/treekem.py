"""TreeKEM (RFC 9420 §4.1.2, §7.4-§7.6, §7.9): creating, merging and decrypting an UpdatePath.

A committer refreshes its leaf and every node of its filtered direct path from a
chain of path secrets, and encrypts each path secret to the resolution of the
copath child below it, under the provisional GroupContext. A receiver merges the
public part into its tree (checking the leaf's parent hash), decrypts the one
path secret meant for its subtree, derives the rest of the chain and checks that
the public keys it derives are the ones sent. The last link of the chain gives
the commit_secret for the key schedule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from securechat.crypto.mls import hpke, labels, tree_math
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.leaf_node import LeafNode, LeafNodeSource
from securechat.crypto.mls.proposals import HPKECiphertext, UpdatePath, UpdatePathNode
from securechat.crypto.mls.ratchet_tree import ParentNode, RatchetTree
from securechat.crypto.mls.suite import CipherSuite, random_bytes


def next_path_secret(suite: CipherSuite, path_secret: bytes) -> bytes:
    return labels.derive_secret(suite, path_secret, b"path")


def node_key_pair(suite: CipherSuite, path_secret: bytes) -> tuple[bytes, bytes]:
    """The HPKE key pair of the node a path secret belongs to (§7.4)."""
    return hpke.derive_key_pair(suite.dh, labels.derive_secret(suite, path_secret, b"node"))


def filtered_direct_path(tree: RatchetTree, leaf_index: int) -> list[tuple[int, int]]:
    """(node, copath child) pairs up the direct path, skipping each node whose copath
    child has an empty resolution (§4.1.2)."""
    x = tree_math.leaf_to_node(leaf_index)
    out = []
    for p in tree_math.direct_path(x, tree.n_leaves):
        child = tree_math.left(p) if x > p else tree_math.right(p)
        if tree.resolution(child):
            out.append((p, child))
        x = p
    return out


def _resolution(tree: RatchetTree, node: int, exclude: Collection[int]) -> list[int]:
    """The resolution without the leaves added in the same Commit (§7.6)."""
    excluded = {tree_math.leaf_to_node(i) for i in exclude}
    return [x for x in tree.resolution(node) if x not in excluded]


def _set_path(tree: RatchetTree, sender: int, keys: list[bytes]) -> tuple[RatchetTree, bytes]:
    """Blank the sender's direct path and put `keys` on its filtered direct path, each
    node carrying the parent hash of the next one up (computed from the root down,
    §7.9). Returns the tree and the parent hash the sender's leaf must carry."""
    path = filtered_direct_path(tree, sender)
    if len(keys) != len(path):
        raise InvalidMessage(
            f"The UpdatePath has {len(keys)} nodes; the filtered direct path has {len(path)}."
        )
    nodes = list(tree.nodes)
    for p in tree_math.direct_path(tree_math.leaf_to_node(sender), tree.n_leaves):
        nodes[p] = None
    parent_hash = b""
    for (p, copath_child), key in reversed(list(zip(path, keys, strict=True))):
        nodes[p] = node = ParentNode(key, parent_hash, ())
        # The copath child's subtree holds no node of the path: its hash in the tree
        # before the path is the one in the tree after.
        parent_hash = tree.parent_hash_of(node, copath_child)
    return tree.derive(tuple(nodes)), parent_hash


def merge_update_path(tree: RatchetTree, sender: int, update_path: UpdatePath) -> RatchetTree:
    """Apply the public part of `update_path` and check its leaf's parent hash (§7.5)."""
    if tree.leaf(sender) is None:
        raise InvalidMessage(f"Leaf {sender} is blank and cannot send an UpdatePath.")
    leaf = update_path.leaf_node
    if leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise InvalidMessage("An UpdatePath's leaf must have the commit source.")
    merged, parent_hash = _set_path(tree, sender, [n.encryption_key for n in update_path.nodes])
    if leaf.parent_hash != parent_hash:
        raise InvalidMessage("The UpdatePath's leaf does not carry the expected parent hash.")
    nodes = list(merged.nodes)
    nodes[tree_math.leaf_to_node(sender)] = leaf
    return merged.derive(tuple(nodes))


@dataclass(frozen=True, repr=False)
class PathResult:
    """What a receiver learns: the path secret it decrypted, the private keys of the
    path nodes above it, and the commit_secret."""

    path_secret: bytes
    private_keys: Mapping[int, bytes]
    commit_secret: bytes


def decrypt_update_path(
    merged: RatchetTree,
    sender: int,
    update_path: UpdatePath,
    receiver: int,
    private_keys: Mapping[int, bytes],
    group_context: GroupContext,
    exclude: Collection[int] = (),
) -> PathResult:
    """Decrypt the path secret for `receiver`, who holds `private_keys` (node -> HPKE
    private key), from an UpdatePath already merged into `merged` (§7.5)."""
    suite = merged.suite
    path = filtered_direct_path(merged, sender)
    if len(path) != len(update_path.nodes):
        raise InvalidMessage("The UpdatePath does not match the sender's filtered direct path.")
    receiver_node = tree_math.leaf_to_node(receiver)
    for position, (_, copath_child) in enumerate(path):
        span = (1 << tree_math.level(copath_child)) - 1
        if abs(receiver_node - copath_child) > span:
            continue
        resolution = _resolution(merged, copath_child, exclude)
        sealed = update_path.nodes[position].encrypted_path_secret
        if len(sealed) != len(resolution):
            raise InvalidMessage("The UpdatePath has the wrong number of ciphertexts.")
        holder = next((i for i, x in enumerate(resolution) if x in private_keys), None)
        if holder is None:
            raise InvalidMessage("No key of ours can open this UpdatePath.")
        secret = labels.decrypt_with_label(
            suite,
            private_keys[resolution[holder]],
            b"UpdatePathNode",
            group_context.encode(),
            sealed[holder].kem_output,
            sealed[holder].ciphertext,
        )
        return _derive_chain(merged, path[position:], update_path.nodes[position:], secret)
    raise InvalidMessage(f"Leaf {receiver} is not below the sender's path.")


def _derive_chain(
    tree: RatchetTree,
    path: list[tuple[int, int]],
    nodes: tuple[UpdatePathNode, ...],
    first: bytes,
) -> PathResult:
    suite = tree.suite
    secret, keys = first, {}
    for (p, _), node in zip(path, nodes, strict=True):
        private, public = node_key_pair(suite, secret)
        if public != node.encryption_key:
            raise InvalidMessage(f"The public key sent for node {p} does not match its secret.")
        keys[p] = private
        secret = next_path_secret(suite, secret)
    return PathResult(first, keys, secret)


@dataclass(frozen=True, repr=False)
class CreatedPath:
    """A committer's side: the tree to use, what to send, and what to keep."""

    tree: RatchetTree
    update_path: UpdatePath
    leaf_private: bytes
    private_keys: Mapping[int, bytes]
    path_secrets: Mapping[int, bytes]
    commit_secret: bytes


def create_update_path(
    tree: RatchetTree,
    sender: int,
    signature_private: bytes,
    group_context: GroupContext,
    exclude: Collection[int] = (),
    *,
    leaf_secret: bytes | None = None,
    first_path_secret: bytes | None = None,
) -> CreatedPath:
    """Refresh `sender`'s leaf and path (§7.4, §7.5).

    `group_context` is the provisional context of the new epoch; its tree_hash is
    replaced by the hash of the tree this path produces, as §7.6 requires.
    """
    suite = tree.suite
    old_leaf = tree.leaf(sender)
    if old_leaf is None:
        raise InvalidMessage(f"Leaf {sender} is blank and cannot commit.")
    path = filtered_direct_path(tree, sender)
    secret = first_path_secret if first_path_secret is not None else random_bytes(suite.nh)
    secrets: dict[int, bytes] = {}
    keys: dict[int, bytes] = {}
    publics = []
    for p, _ in path:
        private, public = node_key_pair(suite, secret)
        secrets[p], keys[p] = secret, private
        publics.append(public)
        secret = next_path_secret(suite, secret)
    commit_secret = secret
    leaf_private, leaf_public = hpke.derive_key_pair(
        suite.dh, leaf_secret if leaf_secret is not None else random_bytes(suite.dh.n_sk)
    )
    merged, parent_hash = _set_path(tree, sender, publics)
    unsigned = replace(
        old_leaf,
        encryption_key=leaf_public,
        leaf_node_source=LeafNodeSource.COMMIT,
        lifetime=None,
        parent_hash=parent_hash,
        signature=b"",
    )
    leaf = _sign_leaf(suite, unsigned, signature_private, group_context.group_id, sender)
    nodes = list(merged.nodes)
    nodes[tree_math.leaf_to_node(sender)] = leaf
    new_tree = merged.derive(tuple(nodes))
    context = replace(group_context, tree_hash=new_tree.tree_hash()).encode()
    path_nodes = []
    for (p, copath_child), public in zip(path, publics, strict=True):
        sealed = []
        for x in _resolution(new_tree, copath_child, exclude):
            kem_output, ciphertext = labels.encrypt_with_label(
                suite, new_tree.encryption_key(x), b"UpdatePathNode", context, secrets[p]
            )
            sealed.append(HPKECiphertext(kem_output, ciphertext))
        path_nodes.append(UpdatePathNode(public, tuple(sealed)))
    return CreatedPath(
        new_tree,
        UpdatePath(leaf, tuple(path_nodes)),
        leaf_private,
        keys,
        secrets,
        commit_secret,
    )


def _sign_leaf(
    suite: CipherSuite, leaf: LeafNode, signature_private: bytes, group_id: bytes, index: int
) -> LeafNode:
    signature = labels.sign_with_label(
        suite, signature_private, b"LeafNodeTBS", leaf.tbs(group_id, index)
    )
    return replace(leaf, signature=signature)
