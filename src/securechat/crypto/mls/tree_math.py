"""Array-based binary tree arithmetic (RFC 9420 §4.2, §7.1 and Appendix C).

Nodes are numbered left to right in one array: leaves at even indices, parents at
odd ones, a node's level being the number of trailing one bits of its index. RFC
9420 trees are always full (a power-of-two number of leaves), so each function
takes the leaf count `n` and expects it to be a power of two where that matters.
"""

from __future__ import annotations


def log2(x: int) -> int:
    """Floor of log2(x), with log2(0) = 0 as in Appendix C."""
    return max(x.bit_length() - 1, 0)


def level(x: int) -> int:
    """Height above the leaves: the count of trailing ones of the index."""
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def node_width(n: int) -> int:
    return 0 if n == 0 else 2 * (n - 1) + 1


def root(n: int) -> int:
    return (1 << log2(node_width(n))) - 1


def is_leaf(x: int) -> bool:
    return x % 2 == 0


def leaf_to_node(leaf: int) -> int:
    return 2 * leaf


def node_to_leaf(x: int) -> int:
    if not is_leaf(x):
        raise ValueError(f"node {x} is not a leaf")
    return x // 2


def left(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError(f"leaf {x} has no children")
    return x ^ (1 << (k - 1))


def right(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError(f"leaf {x} has no children")
    return x ^ (3 << (k - 1))


def parent(x: int, n: int) -> int:
    if x == root(n):
        raise ValueError(f"the root {x} has no parent")
    k = level(x)
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def sibling(x: int, n: int) -> int:
    p = parent(x, n)
    return right(p) if x < p else left(p)


def direct_path(x: int, n: int) -> list[int]:
    """The parents of `x` up to and including the root (§4.1)."""
    r = root(n)
    path: list[int] = []
    while x != r:
        x = parent(x, n)
        path.append(x)
    return path


def copath(x: int, n: int) -> list[int]:
    """The sibling of `x` and of each node on its direct path except the root."""
    if x == root(n):
        return []
    return [sibling(y, n) for y in [x, *direct_path(x, n)[:-1]]]


def subtree(x: int) -> range:
    """The node indices under `x`, `x` included: a span of its level on either side."""
    span = (1 << level(x)) - 1
    return range(x - span, x + span + 1)
