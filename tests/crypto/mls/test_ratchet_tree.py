"""The public ratchet tree (RFC 9420 §4.1, §7) against tree-validation.json."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securechat.crypto.mls.codec import decode
from securechat.crypto.mls.errors import InvalidMessage, InvalidMLSSignature
from securechat.crypto.mls.proposals import Add, Proposal, Remove, Update, read_proposal
from securechat.crypto.mls.ratchet_tree import KeyCounts, ParentNode, RatchetTree
from securechat.crypto.mls.suite import CipherSuite, get_suite
from tests.crypto.mls.vectors import by_suite, load


def _trees(suite: CipherSuite) -> list[tuple[RatchetTree, dict[str, object]]]:
    return [
        (RatchetTree.decode(suite, bytes.fromhex(case["tree"])), case)
        for case in by_suite("tree-validation.json", suite.id)
    ]


def test_tree_validation_vectors(suite: CipherSuite) -> None:
    """Resolution and tree hash of every node; parent hashes and leaf signatures hold."""
    trees = _trees(suite)
    for tree, case in trees:
        assert len(tree.nodes) == len(case["resolutions"])  # type: ignore[arg-type]
        assert [tree.resolution(x) for x in range(len(tree.nodes))] == case["resolutions"]
        assert [tree.tree_hash(x).hex() for x in range(len(tree.nodes))] == case["tree_hashes"]
        tree.verify_parent_hashes()
        tree.verify_leaf_signatures(bytes.fromhex(str(case["group_id"])))
        assert tree.encode() == bytes.fromhex(str(case["tree"]))
    assert len(trees) == 14


def _largest(suite: CipherSuite) -> tuple[RatchetTree, bytes]:
    tree, case = max(_trees(suite), key=lambda t: len(t[0].nodes))
    return tree, bytes.fromhex(str(case["group_id"]))


def test_a_planted_parent_key_breaks_the_parent_hash_chain(suite: CipherSuite) -> None:
    """Replacing a parent's public key (as an attacker would) fails §7.9.2."""
    tree, _ = _largest(suite)
    p = next(i for i, n in enumerate(tree.nodes) if isinstance(n, ParentNode))
    node = tree.nodes[p]
    assert isinstance(node, ParentNode)
    forged = list(tree.nodes)
    forged[p] = replace(node, encryption_key=bytes(len(node.encryption_key)))
    with pytest.raises(InvalidMessage, match="parent-hash"):
        RatchetTree(suite, tuple(forged)).verify_parent_hashes()


def test_leaf_signatures_are_bound_to_the_group(suite: CipherSuite) -> None:
    """Commit and update leaves sign the group id: another group's id fails."""
    tree, group_id = _largest(suite)
    tree.verify_leaf_signatures(group_id)
    with pytest.raises(InvalidMLSSignature):
        tree.verify_leaf_signatures(group_id + b"x")


def _apply(tree: RatchetTree, proposal: Proposal, sender: int) -> RatchetTree:
    if isinstance(proposal, Add):
        return tree.add_leaf(proposal.key_package.leaf_node)[0]
    if isinstance(proposal, Update):
        return tree.update_leaf(sender, proposal.leaf_node)
    assert isinstance(proposal, Remove)
    return tree.remove_leaf(proposal.removed)


def test_tree_operations_vectors() -> None:
    """Add, Update and Remove give the expected tree bytes and tree hash."""
    cases = load("tree-operations.json")
    kinds = set()
    for case in cases:
        suite = get_suite(case["cipher_suite"])
        before = RatchetTree.decode(suite, bytes.fromhex(case["tree_before"]))
        assert before.tree_hash().hex() == case["tree_hash_before"]
        proposal = decode(bytes.fromhex(case["proposal"]), read_proposal)
        kinds.add(type(proposal))
        after = _apply(before, proposal, case["proposal_sender"])
        assert after.encode().hex() == case["tree_after"]
        assert after.tree_hash().hex() == case["tree_hash_after"]
    assert kinds == {Add, Update, Remove}


def test_removing_a_blank_leaf_or_updating_one_is_refused(suite: CipherSuite) -> None:
    tree, _ = _largest(suite)
    tree = tree.remove_leaf(1)
    with pytest.raises(InvalidMessage):
        tree.remove_leaf(1)
    leaf = tree.leaf(0)
    assert leaf is not None
    with pytest.raises(InvalidMessage):
        tree.update_leaf(1, leaf)
    with pytest.raises(InvalidMessage):
        tree.remove_leaf(tree.n_leaves)


def test_add_fills_the_leftmost_blank_then_extends(suite: CipherSuite) -> None:
    tree, _ = _largest(suite)
    leaf = tree.leaf(0)
    assert leaf is not None
    grown, index = tree.remove_leaf(1).add_leaf(leaf)
    assert index == 1 and grown.n_leaves == tree.n_leaves
    full = RatchetTree(suite, (leaf,))
    two, second = full.add_leaf(leaf)
    assert (second, two.n_leaves) == (1, 2)
    assert two.remove_leaf(1).nodes == (leaf,)


def _fresh_hashes(tree: RatchetTree) -> list[bytes]:
    """Every node's tree hash computed from nothing, as a joiner would."""
    fresh = RatchetTree(tree.suite, tree.nodes)
    return [fresh.tree_hash(x) for x in range(len(tree.nodes))]


def _counted(counts: KeyCounts) -> tuple[object, ...]:
    return counts.encryption, counts.signature, counts.credential_types, counts.capabilities


def test_a_changed_tree_reuses_only_the_hashes_of_unchanged_subtrees(suite: CipherSuite) -> None:
    """Hashes and key counts handed on by `derive` equal a fresh computation after
    each kind of change: a leaf replaced, a leaf removed (the tree truncated), a leaf
    added (the tree extended), and a node swapped for an equal but distinct object."""
    tree, _ = _largest(suite)
    assert [tree.tree_hash(x) for x in range(len(tree.nodes))] == _fresh_hashes(tree)
    assert _counted(tree.key_counts) == _counted(KeyCounts.of(tree.nodes))
    leaf = tree.leaf(0)
    assert leaf is not None
    last = max(i for i in range(tree.n_leaves) if tree.leaf(i) is not None)
    other = tree.leaf(last)
    assert other is not None
    steps = [
        lambda t: t.update_leaf(0, replace(leaf, signature=b"changed")),
        lambda t: t.remove_leaf(last),
        lambda t: t.add_leaf(other)[0],
        lambda t: t.add_leaf(replace(other, encryption_key=b"k" * 32))[0],
        lambda t: t.derive(tuple(replace(n) if n is not None else None for n in t.nodes)),
    ]
    for step in steps:
        changed = step(tree)
        hashes = [changed.tree_hash(x) for x in range(len(changed.nodes))]
        assert hashes == _fresh_hashes(changed)
        assert _counted(changed.key_counts) == _counted(KeyCounts.of(changed.nodes))
        tree = changed
