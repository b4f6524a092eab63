"""MLS group benchmarks: what a Commit, its processing, a Welcome and an application
message cost in groups of 10 to 10,000 members, on suite 1 (X25519) and the X-Wing
hybrid suite, against the Double Ratchet's per-message cost measured in the same run.

Each group is built as a new group is: the creator adds everyone in one Commit. Its
parent nodes are then blank apart from the creator's path, so a later path is
encrypted to every other leaf under it: the worst case for TreeKEM, and the shape a
group keeps until its members have committed. Every operation is pure, so a Commit
is created, processed or joined from the same state on each repeat.

Run: .venv/bin/python -m bench mls   (or bench/bench_mls.py for the table alone)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.bench_crypto import MESSAGE, _session
from bench.common import Row, log, row
from securechat.crypto import decrypt, encrypt
from securechat.crypto.mls import group as g
from securechat.crypto.mls.leaf_node import BASIC, Credential
from securechat.crypto.mls.suite import HYBRID_X25519, get_suite
from securechat.crypto.mls.validation import Policy

NOW = 1_800_000_000
POLICY = Policy(lambda credential, key: True, NOW)
SUITES = {"suite 1": 1, "X-Wing hybrid": HYBRID_X25519}
SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)
BUDGET_S = 120.0
"""A size whose group would take longer than this to build, extrapolated linearly from
the size before it, is skipped (10,000 members fit on an idle machine, not a busy one)."""


def _timed(op: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        op()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _member(suite_id: int, name: str) -> tuple[g.KeyPackage, g.KeyPackagePrivate]:
    signature_private = get_suite(suite_id).signature.generate()
    credential = Credential(BASIC, identity=name.encode())
    return g.make_key_package(credential, signature_private, now=NOW, suite_id=suite_id)


def _group(suite_id: int, size: int) -> tuple[g.GroupState, g.GroupState]:
    """The creator's and one other member's state in a group of `size`."""
    signature_private = get_suite(suite_id).signature.generate()
    credential = Credential(BASIC, identity=b"m0")
    creator = g.create_group(credential, signature_private, now=NOW, suite_id=suite_id)
    members = [_member(suite_id, f"m{i}") for i in range(1, size)]
    result = g.commit(creator, POLICY, proposals=[g.Add(kp) for kp, _ in members])
    assert result.welcome is not None
    kp, private = members[-1]
    other = g.join_from_welcome(result.welcome, kp, private, POLICY)
    return result.state, other


def _ratchet_ms(repeats: int, per_repeat: int = 2_000) -> list[float]:
    alice, bob = _session()
    states = {"alice": alice, "bob": bob}

    def one() -> None:
        for _ in range(per_repeat):
            states["alice"], message = encrypt(states["alice"], MESSAGE, "alice", "bob")
            states["bob"], _ = decrypt(states["bob"], message, "alice", "bob")

    return [t / per_repeat for t in _timed(one, repeats)]


NOTE = "baseline: Double Ratchet 1 KiB encrypt+decrypt, one message, same run"


def _one_size(
    label: str, suite_id: int, size: int, repeats: int, ratchet: list[float]
) -> tuple[list[Row], float]:
    """The four rows of one group size, and how long the group took to build."""
    start = time.perf_counter()
    creator, other = _group(suite_id, size)
    built = time.perf_counter() - start
    log(f"{label} n={size}: group built in {built:.1f} s")
    kp, private = _member(suite_id, "joiner")
    result = g.commit(creator, POLICY, proposals=[g.Add(kp)])
    welcome = result.welcome
    assert welcome is not None
    states = {"a": creator, "b": other}

    def message(count: int = 200) -> None:
        for _ in range(count):
            states["a"], sealed = g.protect(states["a"], MESSAGE)
            states["b"], _ = g.process(states["b"], sealed, POLICY)

    name = f"{label}, n={size:,}"
    rows = [
        row("mls", f"{name}: {what}", _timed(op, repeats), "ms", ratchet, note=NOTE)
        for what, op in (
            ("commit adding one member", lambda: g.commit(creator, POLICY, proposals=[g.Add(kp)])),
            ("another member processes it", lambda: g.process(other, result.message, POLICY)),
            (
                "joiner processes the Welcome",
                lambda: g.join_from_welcome(welcome, kp, private, POLICY),
            ),
        )
    ]
    per_message = [t / 200 for t in _timed(message, repeats)]
    rows.append(
        row(
            "mls",
            f"{name}: application 1 KiB protect+unprotect",
            per_message,
            "ms",
            ratchet,
            note=f"{NOTE}; pairwise ratchets would cost {size - 1} of them",
        )
    )
    return rows, built


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    ratchet = _ratchet_ms(repeats)
    rows = [row("mls", "Double Ratchet 1 KiB encrypt+decrypt", ratchet, "ms/op")]
    for label, suite_id in SUITES.items():
        previous = (1, 0.0)
        for size in QUICK_SIZES if quick else SIZES:
            expected = previous[1] * size / previous[0]
            if expected > BUDGET_S:
                log(f"{label}: skipping n={size}, its group would take ~{expected:.0f} s to build")
                break
            size_rows, built = _one_size(label, suite_id, size, repeats, ratchet)
            rows += size_rows
            previous = (size, built)
    return rows


def main() -> None:
    for r in run():
        ratio = f"{r['ratio']}x" if r.get("ratio") else ""
        print(f"{r['name']:<70} {r['value']:>10.3f} {r['unit']:<6} {ratio:>9}")


if __name__ == "__main__":
    main()
