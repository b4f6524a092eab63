"""Per-message relay CPU of git revision A against revision B, interleaved in one run.

    .venv/bin/python -m bench.ab REV_A REV_B [--rounds 5] [--scenario flood ...]

Each revision is checked out in its own temporary `git worktree` under /tmp
and its relay runs from there (`PYTHONPATH=<worktree>/src`) with this
checkout's venv and this checkout's load generator, so only the relay
differs. Rounds alternate the order (A B, B A, A B, ...) so a neighbour's
load that grows or shrinks during the run hits both alike; the plain
forwarder runs in every round too, as a yardstick of how loaded the machine
was. The answer is the median over rounds of B/A per round, next to the
medians of each side: "B costs x.xx times A per message".

`--postgres` runs both relays as one node on PostgreSQL + Redis (a schema
and a key prefix of their own each, dropped afterwards) instead of SQLite.

A budget such as issue 22's (the metrics may add at most 3 %) is only
resolved when the rounds' B/A spread is well under it; the output says how
wide it was.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_cluster import PG, REDIS, _schema
from bench.bench_relay import UNLIMITED, measure, register
from bench.common import REPO, Server, log, median_spread, scratch, users

SCENARIOS: dict[str, dict[str, Any]] = {
    "flood": {"label": "100 clients, flood", "clients": 100, "flood": True},
    "flood-random": {
        "label": "100 clients, flood, random peers",
        "clients": 100,
        "flood": True,
        "peers": "random",
    },
    "flood-1000": {"label": "1,000 clients, flood", "clients": 1000, "flood": True},
    "pairs-5000": {"label": "1,000 clients, 5,000 msg/s", "clients": 1000, "rate": 5000},
    "random-5000": {
        "label": "1,000 clients, 5,000 msg/s, random peers",
        "clients": 1000,
        "rate": 5000,
        "peers": "random",
    },
    "group-5000": {
        "label": "1,000 clients, 5,000 copies/s, groups of 10",
        "clients": 1000,
        "rate": 5000,
        "peers": "group",
    },
}


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Checkout:
    """A revision in a temporary detached worktree, removed on exit."""

    def __init__(self, rev: str, parent: Path, tag: str) -> None:
        self.rev = rev
        self.commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
        self.path = parent / tag

    def __enter__(self) -> Checkout:
        _git("worktree", "add", "--detach", str(self.path), self.commit)
        return self

    def __exit__(self, *exc: object) -> None:
        _git("worktree", "remove", "--force", str(self.path))

    @property
    def src(self) -> Path:
        return self.path / "src"


def run_ab(
    rev_a: str,
    rev_b: str,
    scenarios: list[str],
    rounds: int,
    duration: float,
    postgres: bool = False,
) -> list[dict[str, Any]]:
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="securechat-ab-") as parent,
        Checkout(rev_a, Path(parent), "a") as a,
        Checkout(rev_b, Path(parent), "b") as b,
        scratch("ab") as tmp,
    ):
        log(f"A = {rev_a} ({a.commit[:10]}), B = {rev_b} ({b.commit[:10]})")
        for name in scenarios:
            results.append(_scenario(name, a, b, tmp / name, rounds, duration, postgres))
    return results


def _scenario(
    name: str,
    a: Checkout,
    b: Checkout,
    tmp: Path,
    rounds: int,
    duration: float,
    postgres: bool,
) -> dict[str, Any]:
    scenario = SCENARIOS[name]
    names = users("u", scenario["clients"])
    env = UNLIMITED if scenario.get("flood") else {}
    schemas = [f"ab_{secrets.token_hex(4)}" for _ in "AB"] if postgres else []
    stores = [_pg_env(schema) for schema in schemas] or [{}, {}]
    for schema in schemas:
        asyncio.run(_schema("create", schema))
    servers = {
        "A": Server("relay", tmp / "a", env=env | stores[0], src=a.src),
        "B": Server("relay", tmp / "b", env=env | stores[1], src=b.src),
        "plain": Server("plain", tmp / "plain"),
    }
    try:
        for server in servers.values():
            server.start()
        register(servers["A"], names)
        register(servers["B"], names)
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in servers}
        for i in range(rounds):
            order = ["A", "B"] if i % 2 == 0 else ["B", "A"]
            log(f"{scenario['label']}: round {i + 1}/{rounds}, {' then '.join(order)}")
            for key in [*order, "plain"]:
                runs[key].append(measure(servers[key], names, scenario, duration=duration))
    finally:
        for server in servers.values():
            server.stop()
        for schema in schemas:
            asyncio.run(_schema("drop", schema))
    cpu = {key: [float(r["cpu_us_per_msg"] or 0) for r in v] for key, v in runs.items()}
    tput = {key: [float(r["throughput"]) for r in v] for key, v in runs.items()}
    p99 = {key: [float(r["p99_ms"] or 0) for r in v] for key, v in runs.items()}
    wait = {key: [float(r["server_wait_share"]) for r in v] for key, v in runs.items()}
    ratios = [bb / aa for aa, bb in zip(cpu["A"], cpu["B"], strict=True) if aa]
    return {
        "scenario": scenario["label"],
        "rounds": rounds,
        "cpu_us": {key: median_spread(v) for key, v in cpu.items()},
        "throughput": {key: median_spread(v) for key, v in tput.items()},
        "p99_ms": {key: median_spread(v) for key, v in p99.items()},
        "wait_share": {key: median_spread(v) for key, v in wait.items()},
        "cpu_ratio_b_over_a": statistics.median(ratios),
        "cpu_ratios": ratios,
        "loadgen_cpu_max": max(r["loadgen_cpu_util"] for v in runs.values() for r in v),
    }


def _pg_env(schema: str) -> dict[str, str]:
    return {
        "SECURECHAT_STORE": f"{PG}?search_path={schema}",
        "SECURECHAT_BUS": REDIS,
        "SECURECHAT_BUS_PREFIX": f"bench:{schema}",
    }


def report(rev_a: str, rev_b: str, results: list[dict[str, Any]]) -> str:
    lines = [
        f"A = `{rev_a}`, B = `{rev_b}`; medians over rounds, spread (max - min) / median",
        "",
        "| scenario | A µs/msg | B µs/msg | plain µs/msg | B/A (median of rounds) |"
        " B/A per round | A msg/s | B msg/s | A / B / plain p99 ms |"
        " A / B / plain waiting for a core | loadgen CPU max |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: |",
    ]
    for r in results:
        c, t, p, w = r["cpu_us"], r["throughput"], r["p99_ms"], r["wait_share"]
        lines.append(
            f"| {r['scenario']} | {c['A'][0]:.1f} ({c['A'][1]:.0f} %) | {c['B'][0]:.1f} "
            f"({c['B'][1]:.0f} %) | {c['plain'][0]:.1f} | {r['cpu_ratio_b_over_a']:.3f} | "
            f"{', '.join(f'{x:.3f}' for x in r['cpu_ratios'])} | {t['A'][0]:,.0f} | "
            f"{t['B'][0]:,.0f} | {p['A'][0]:.1f} / {p['B'][0]:.1f} / {p['plain'][0]:.1f} | "
            f"{100 * w['A'][0]:.0f} / {100 * w['B'][0]:.0f} / {100 * w['plain'][0]:.0f} % | "
            f"{100 * r['loadgen_cpu_max']:.0f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("rev_a")
    parser.add_argument("rev_b")
    parser.add_argument("--rounds", type=int, default=5, help="at least 3 (default 5)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="repeatable; default: flood",
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per run")
    parser.add_argument(
        "--postgres", action="store_true", help="one node on PostgreSQL + Redis, not SQLite"
    )
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds: at least 3, or the median means nothing")
    results = run_ab(
        args.rev_a,
        args.rev_b,
        args.scenario or ["flood"],
        args.rounds,
        args.duration,
        args.postgres,
    )
    print(report(args.rev_a, args.rev_b, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
