"""A group in the steady state TreeKEM is designed for: every member has committed once.

Committing through the protocol would make every member process every other
member's Commit (n^2 processings, hours at 1,000 members). The tree is instead
built the way those n Commits would leave it, with treekem's own
`create_update_path` run for every leaf in turn: each refreshes its leaf and direct
path, so every parent node holds a key, no unmerged leaves remain, and each parent
is parent-hash valid through the last leaf under it that committed (nothing under
it changed after that Commit). The leaves commit in bit-reversed order (0, n/2,
n/4, 3n/4, ...), so that a subtree still blank is small when a path is encrypted
to it: in index order, every leaf's path would reach a blank half of the tree, and
the build would be quadratic.
Each member's state is then the one it would hold: its own leaf's and direct path's
private keys, and epoch secrets shared with the others. The epoch secrets are drawn
at random rather than derived from n Commits; nothing a member does next can tell
the difference, and a joiner added afterwards checks the whole tree (tree hash,
parent hashes, every leaf signature) as it would any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType

from securechat.crypto.mls import group as g
from securechat.crypto.mls import tree_math
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.leaf_node import BASIC, Credential
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.secret_tree import SecretTree
from securechat.crypto.mls.suite import get_suite, random_bytes
from securechat.crypto.mls.treekem import create_update_path


def filled_group(
    suite_id: int, size: int, members: Sequence[int], *, now: int
) -> dict[int, g.GroupState]:
    """The states of `members` (leaf indices) in a group of `size` whose tree is full."""
    suite = get_suite(suite_id)
    packages = [
        g.make_key_package(
            Credential(BASIC, identity=f"m{i}".encode()),
            suite.signature.generate(),
            now=now,
            suite_id=suite_id,
        )
        for i in range(size)
    ]
    first = g.create_group(
        packages[0][0].leaf_node.credential,
        packages[0][1].signature_private,
        now=now,
        suite_id=suite_id,
    )
    nodes = [None] * tree_math.node_width(size)
    for i, (key_package, _) in enumerate(packages):
        nodes[tree_math.leaf_to_node(i)] = key_package.leaf_node
    tree = RatchetTree.from_nodes(suite, tuple(nodes))
    context = GroupContext(suite.id, first.group_id, 0, b"", b"", ())
    private: dict[int, bytes] = {}
    bits = max(1, (size - 1).bit_length())
    order = sorted(range(size), key=lambda i: int(f"{i:0{bits}b}"[::-1], 2))
    for i in order:
        key_package_private = packages[i][1]
        # Excluding every leaf leaves only the parents already refreshed in the
        # copath's resolution: at most log2(n) encryptions per member.
        created = create_update_path(
            tree, i, key_package_private.signature_private, context, range(size)
        )
        tree = created.tree
        private.update(created.private_keys)
        private[tree_math.leaf_to_node(i)] = created.leaf_private
    context = replace(
        first.context, epoch=size, tree_hash=tree.tree_hash(), confirmed_transcript_hash=b""
    )
    secret_tree = SecretTree.create(suite, random_bytes(suite.nh), tree.n_leaves)
    states = {}
    for i in members:
        leaf = tree_math.leaf_to_node(i)
        held = [leaf, *tree_math.direct_path(leaf, tree.n_leaves)]
        states[i] = replace(
            first,
            context=context,
            tree=tree,
            own_leaf=i,
            signature_private=packages[i][1].signature_private,
            node_keys=MappingProxyType({x: private[x] for x in held if x in private}),
            secret_tree=secret_tree,
        )
    return states
