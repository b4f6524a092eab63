"""MLS group benchmarks: what a Commit, its processing, a Welcome and an application
message cost in groups of 10 to 10,000 members, on suite 1 (X25519) and the X-Wing
hybrid suite, against the Double Ratchet's per-message cost measured in the same run.

Each group is built as a new group is: the creator adds everyone in one Commit. Its
parent nodes are then blank apart from the creator's path, so a later path is
encrypted to every other leaf under it: the worst case for TreeKEM, and the shape a
group keeps until its members have committed. Every operation is pure, so a Commit
is created, processed or joined from the same state on each repeat.

The second part measures the steady state instead (`mls_filled.py`: every member
has committed once, so every parent node holds a key): per-member CPU time of an
update Commit, an Add and a Remove, created by one member and processed by another,
for groups of 2 to 1,000, as ratios against the 8-member group measured in the same
repeat. TreeKEM promises O(log n) there; the rows say whether we deliver it.

Run: .venv/bin/python -m bench mls   (or bench/bench_mls.py for the table alone)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from bench.bench_crypto import MESSAGE, _session
from bench.common import Row, log, row, timed_ms
from bench.mls_filled import filled_group
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

    return [t / per_repeat for t in timed_ms(one, repeats)]


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
        row("mls", f"{name}: {what}", timed_ms(op, repeats), "ms", ratchet, note=NOTE)
        for what, op in (
            ("commit adding one member", lambda: g.commit(creator, POLICY, proposals=[g.Add(kp)])),
            ("another member processes it", lambda: g.process(other, result.message, POLICY)),
            (
                "joiner processes the Welcome",
                lambda: g.join_from_welcome(welcome, kp, private, POLICY),
            ),
        )
    ]
    per_message = [t / 200 for t in timed_ms(message, repeats)]
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


STEADY_SIZES = (2, 8, 64, 512, 1_000, 10_000)
STEADY_QUICK_SIZES = (2, 8, 64)
STEADY_BASE = 8
STEADY_BUDGET_S = 150.0
"""A steady-state size whose tree would take longer than this to build is skipped. The
build grew as n^1.6 from 1,000 to 2,048 members (each path is encrypted to the still
blank parts of the tree, and each step compares the whole node tuple), so the estimate
scales the size before it by that."""
STEADY_BUILD_EXPONENT = 1.6


def _cpu_ms(op: Callable[[], object], inner: int = 3) -> float:
    """The median CPU time of `inner` runs: this process's CPU, not the wall clock, so
    the other engineers' runs on the two shared cores count for little."""
    out = []
    for _ in range(inner):
        start = time.process_time()
        op()
        out.append((time.process_time() - start) * 1000)
    return statistics.median(out)


def _steady_ops(suite_id: int, size: int) -> dict[str, Callable[[], object]]:
    """The timed operations of one steady-state group: leaf 0 commits, the last leaf
    processes, a joiner takes the Welcome of the Add."""
    processor = size - 1
    removed = size // 2
    states = filled_group(suite_id, size, (0, processor), now=NOW)
    committer, other = states[0], states[processor]
    update = g.commit(committer, POLICY)
    kp, private = _member(suite_id, "joiner")
    add = g.commit(committer, POLICY, proposals=[g.Add(kp)])
    welcome = add.welcome
    assert welcome is not None
    ops: dict[str, Callable[[], object]] = {
        "update Commit (path), create": lambda: g.commit(committer, POLICY),
        "update Commit, another member processes it": lambda: g.process(
            other, update.message, POLICY
        ),
        "Commit adding one, create": lambda: g.commit(committer, POLICY, proposals=[g.Add(kp)]),
        "Commit adding one, another member processes it": lambda: g.process(
            other, add.message, POLICY
        ),
        "joiner processes the Welcome (checks the whole tree)": lambda: g.join_from_welcome(
            welcome, kp, private, POLICY
        ),
    }
    if removed not in (0, processor):
        remove = g.commit(committer, POLICY, proposals=[g.Remove(removed)])
        ops["Commit removing one, create"] = lambda: g.commit(
            committer, POLICY, proposals=[g.Remove(removed)]
        )
        ops["Commit removing one, another member processes it"] = lambda: g.process(
            other, remove.message, POLICY
        )
    return ops


def _ratchet_cpu_ms(count: int = 2_000) -> float:
    """CPU time of one Double Ratchet message (1 KiB encrypt + decrypt), the unit the
    issue compares MLS costs with."""
    alice, bob = _session()
    states = {"alice": alice, "bob": bob}

    def run() -> None:
        for _ in range(count):
            states["alice"], message = encrypt(states["alice"], MESSAGE, "alice", "bob")
            states["bob"], _ = decrypt(states["bob"], message, "alice", "bob")

    return _cpu_ms(run, inner=1) / count


def _log_fit(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least squares t = a + b log2(n): (a, b, R^2)."""
    xs = [math.log2(n) for n, _ in points]
    ys = [t for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    total = sum((y - my) ** 2 for y in ys)
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, 1 - residual / total if total else 1.0


def steady_state(label: str, suite_id: int, sizes: tuple[int, ...], repeats: int) -> list[Row]:
    """Rows for each size and operation, each against the STEADY_BASE group's same
    operation in the same repeat. Met: at most twice log2(n)/log2(8), the growth
    O(log n) allows with room for the constant part (linear growth is n/8)."""
    groups: dict[int, dict[str, Callable[[], object]]] = {}
    previous = (1, 0.0)
    for size in sizes:
        expected = previous[1] * (size / previous[0]) ** STEADY_BUILD_EXPONENT
        if expected > STEADY_BUDGET_S:
            log(f"{label} steady: skipping n={size}, its tree would take ~{expected:.0f} s")
            break
        start = time.perf_counter()
        groups[size] = _steady_ops(suite_id, size)
        built = time.perf_counter() - start
        log(f"{label} steady n={size}: tree built in {built:.1f} s")
        previous = (size, built)
    samples: dict[tuple[int, str], list[float]] = {}
    ratchet: list[float] = []
    for _ in range(repeats):
        ratchet.append(_ratchet_cpu_ms())
        for size, ops in groups.items():
            for what, op in ops.items():
                samples.setdefault((size, what), []).append(_cpu_ms(op))
    per_message = statistics.median(ratchet)
    rows = [row("mls", f"{label} steady: Double Ratchet 1 KiB encrypt+decrypt", ratchet, "ms CPU")]
    for (size, what), values in samples.items():
        base = samples.get((STEADY_BASE, what))
        allowed = 2 * math.log2(size) / math.log2(STEADY_BASE) if size > STEADY_BASE else None
        ratio = statistics.median(v / b for v, b in zip(values, base or values, strict=True))
        welcome = what.startswith("joiner")
        rows.append(
            row(
                "mls",
                f"{label} steady, n={size:,}: {what}",
                values,
                "ms CPU",
                base,
                target=f"<= {allowed:.1f}x n={STEADY_BASE}" if allowed and not welcome else "",
                met=ratio <= allowed if allowed and not welcome else None,
                note=f"baseline: the same operation at n={STEADY_BASE}, same repeat; "
                f"log2 growth would be {math.log2(size) / math.log2(STEADY_BASE):.2f}x, "
                f"linear {size / STEADY_BASE:.3g}x; "
                f"{statistics.median(values) / per_message:.0f} Double Ratchet messages",
            )
        )
    for what in next(iter(groups.values()), {}):
        if what.startswith("joiner"):
            continue
        points = [(n, statistics.median(v)) for (n, w), v in samples.items() if w == what]
        if len(points) > 2:
            a, b, r2 = _log_fit(points)
            rows.append(
                row(
                    "mls",
                    f"{label} steady: {what}, fit t = a + b log2(n)",
                    [b],
                    "ms/log2 n",
                    note=f"a = {a:.2f} ms, R^2 = {r2:.3f} over n = {sorted(n for n, _ in points)}",
                )
            )
    return rows


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    rows = []
    for label, suite_id in SUITES.items():
        rows += steady_state(
            label, suite_id, STEADY_QUICK_SIZES if quick else STEADY_SIZES, repeats
        )
    ratchet = _ratchet_ms(repeats)
    rows.append(row("mls", "Double Ratchet 1 KiB encrypt+decrypt", ratchet, "ms/op"))
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
