"""Array-tree arithmetic against the WG's tree-math vectors (RFC 9420 Appendix C)."""

from __future__ import annotations

from typing import Any

import pytest

from securechat.crypto.mls import tree_math
from tests.crypto.mls.vectors import load


def _or_none(fn: Any, *args: int) -> int | None:
    try:
        return int(fn(*args))
    except ValueError:
        return None


def test_tree_math_vectors() -> None:
    """Width, root, and each node's children, parent and sibling for every tree size."""
    cases = load("tree-math.json")
    for case in cases:
        n = case["n_leaves"]
        width = tree_math.node_width(n)
        assert width == case["n_nodes"]
        assert tree_math.root(n) == case["root"]
        assert [_or_none(tree_math.left, x) for x in range(width)] == case["left"]
        assert [_or_none(tree_math.right, x) for x in range(width)] == case["right"]
        assert [_or_none(tree_math.parent, x, n) for x in range(width)] == case["parent"]
        assert [_or_none(tree_math.sibling, x, n) for x in range(width)] == case["sibling"]
    assert len(cases) == 10


def test_direct_path_and_copath() -> None:
    """§4.1 example shape: leaf A (node 0) in an 8-leaf tree."""
    assert tree_math.direct_path(0, 8) == [1, 3, 7]
    assert tree_math.copath(0, 8) == [2, 5, 11]
    assert tree_math.direct_path(7, 8) == []


def test_leaf_index_conversion_refuses_parents() -> None:
    assert tree_math.leaf_to_node(3) == 6
    with pytest.raises(ValueError):
        tree_math.node_to_leaf(5)
