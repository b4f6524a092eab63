"""Repeats of one scenario against ONE relay process: does its cost grow as its data does?

    .venv/bin/python -m bench.repeats [--scenario random-5000] [--repeats 6]

`bench relay` and `bench.ab` start a relay per scenario, so what a relay
accumulates (contact pairs, the WAL, anything kept per user) only shows across
the repeats of one scenario. This runs a scenario of `bench.ab` again and again
on one relay and prints, per repeat, CPU per delivered message, how long the
relay's event loop waited for a core (a starved relay does less per CPU-second,
whatever its own cost), the p99, and the database and WAL sizes after it.
Issue 21's frame limits apply, as in `bench relay`, except for floods.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.ab import SCENARIOS
from bench.bench_relay import UNLIMITED, measure, register
from bench.common import Server, scratch, users


def _sizes(data_dir: Path) -> str:
    sizes = {p.name: p.stat().st_size for p in data_dir.glob("relay.sqlite3*")}
    database = sizes.get("relay.sqlite3", 0) / 1e6
    wal = sizes.get("relay.sqlite3-wal", 0) / 1e6
    return f"{database:.1f} MB database, {wal:.1f} MB WAL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repeats", description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="random-5000")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    names = users("u", scenario["clients"])
    env = UNLIMITED if scenario.get("flood") else {}
    with scratch("repeats") as tmp, Server("relay", tmp / "relay", env=env) as relay:
        register(relay, names)
        print(f"{scenario['label']}, {args.repeats} repeats on one relay process")
        print(
            "| repeat | µs/msg | µs/msg, whole run drained | msg/s | waiting for a core |"
            " p99 ms | after it |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for i in range(args.repeats):
            window = measure(relay, names, scenario, duration=args.duration)
            print(
                f"| {i + 1} | {window['cpu_us_per_msg'] or 0:.1f} | "
                f"{window['cpu_us_per_msg_whole'] or 0:.1f} | {window['throughput']:,.0f} | "
                f"{100 * window['server_wait_share']:.0f} % | {window['p99_ms'] or 0:,.1f} | "
                f"{_sizes(relay.data_dir)} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
