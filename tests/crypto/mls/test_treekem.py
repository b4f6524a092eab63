"""TreeKEM (RFC 9420 §7.4-§7.6) against treekem.json."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from securechat.crypto.mls import hpke, tree_math, treekem
from securechat.crypto.mls.codec import decode
from securechat.crypto.mls.errors import InvalidMessage, MLSAuthenticationFailed
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.proposals import UpdatePath
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import CipherSuite
from tests.crypto.mls.vectors import by_suite


def _private_state(suite: CipherSuite, tree: RatchetTree, leaf: dict[str, Any]) -> dict[int, bytes]:
    """Leaf and path private keys of one member, each checked against the tree."""
    keys = {tree_math.leaf_to_node(leaf["index"]): bytes.fromhex(leaf["encryption_priv"])}
    for entry in leaf["path_secrets"]:
        keys[entry["node"]], _ = treekem.node_key_pair(suite, bytes.fromhex(entry["path_secret"]))
    for node, private in keys.items():
        assert suite.dh.public_key(private) == tree.encryption_key(node)
    return keys


class Vector:
    def __init__(self, suite: CipherSuite, case: dict[str, Any]) -> None:
        self.suite = suite
        self.case = case
        self.tree = RatchetTree.decode(suite, bytes.fromhex(case["ratchet_tree"]))
        self.leaves = {leaf["index"]: leaf for leaf in case["leaves_private"]}
        self.keys = {i: _private_state(suite, self.tree, leaf) for i, leaf in self.leaves.items()}

    def context(self, tree: RatchetTree) -> GroupContext:
        return GroupContext(
            self.suite.id,
            bytes.fromhex(self.case["group_id"]),
            self.case["epoch"],
            tree.tree_hash(),
            bytes.fromhex(self.case["confirmed_transcript_hash"]),
        )

    def receivers(self, sender: int) -> list[int]:
        return [j for j in range(self.tree.n_leaves) if j != sender and self.tree.leaf(j)]


def _cases(suite: CipherSuite) -> list[Vector]:
    return [Vector(suite, case) for case in by_suite("treekem.json", suite.id)]


def test_treekem_vectors(suite: CipherSuite) -> None:
    """Every UpdatePath merges with a valid parent hash, gives each other member its
    path secret and the commit_secret, and yields the expected tree hash; a fresh
    UpdatePath from the same sender gives every other member the same commit_secret."""
    checked = 0
    for v in _cases(suite):
        for u in v.case["update_paths"]:
            sender = u["sender"]
            path = decode(bytes.fromhex(u["update_path"]), UpdatePath.read)
            merged = treekem.merge_update_path(v.tree, sender, path)
            assert merged.tree_hash().hex() == u["tree_hash_after"]
            merged.verify_parent_hashes()
            path.leaf_node.verify(suite, bytes.fromhex(v.case["group_id"]), sender)
            for j in v.receivers(sender):
                got = treekem.decrypt_update_path(
                    merged, sender, path, j, v.keys[j], v.context(merged)
                )
                assert got.path_secret.hex() == u["path_secrets"][j]
                assert got.commit_secret.hex() == u["commit_secret"]
                checked += 1
            created = treekem.create_update_path(
                v.tree,
                sender,
                bytes.fromhex(v.leaves[sender]["signature_priv"]),
                v.context(v.tree),
            )
            created.tree.verify_parent_hashes()
            created.update_path.leaf_node.verify(suite, bytes.fromhex(v.case["group_id"]), sender)
            assert treekem.merge_update_path(v.tree, sender, created.update_path) == created.tree
            for j in v.receivers(sender):
                got = treekem.decrypt_update_path(
                    created.tree,
                    sender,
                    created.update_path,
                    j,
                    v.keys[j],
                    v.context(created.tree),
                )
                assert got.commit_secret == created.commit_secret
    assert checked > 0


def _first_with_path(suite: CipherSuite) -> tuple[Vector, int, UpdatePath]:
    v = max(_cases(suite), key=lambda c: c.tree.n_leaves)
    u = v.case["update_paths"][0]
    return v, u["sender"], decode(bytes.fromhex(u["update_path"]), UpdatePath.read)


def test_a_path_key_that_does_not_match_its_secret_is_refused(suite: CipherSuite) -> None:
    v, sender, path = _first_with_path(suite)
    _, stranger = hpke.derive_key_pair(suite.dh, bytes(suite.dh.n_sk))
    forged_nodes = tuple(replace(n, encryption_key=stranger) for n in path.nodes)
    forged = replace(path, nodes=forged_nodes)
    with pytest.raises(InvalidMessage, match="parent hash"):
        treekem.merge_update_path(v.tree, sender, forged)


def test_wrong_group_context_fails_decryption(suite: CipherSuite) -> None:
    v, sender, path = _first_with_path(suite)
    merged = treekem.merge_update_path(v.tree, sender, path)
    j = v.receivers(sender)[0]
    with pytest.raises(MLSAuthenticationFailed):
        treekem.decrypt_update_path(merged, sender, path, j, v.keys[j], v.context(v.tree))


def test_a_path_of_the_wrong_length_is_refused(suite: CipherSuite) -> None:
    v, sender, path = _first_with_path(suite)
    with pytest.raises(InvalidMessage):
        treekem.merge_update_path(v.tree, sender, replace(path, nodes=path.nodes[1:]))
