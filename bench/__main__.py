"""`python -m bench [NAME ...] [--quick]`: run the benchmarks, write bench/results/latest.*.

Every figure is a median over repeats with its spread, next to a baseline
measured in the same run, and the ratio between the two. The full run takes
about ten minutes on two cores; `--quick` is a smoke run of a minute or two
(smaller loads, one repeat) whose figures are not worth keeping, so it writes
`quick.md` / `quick.json` instead of `latest.*`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Row

RESULTS = Path(__file__).resolve().parent / "results"

BENCHMARKS = {
    "relay": "bench.bench_relay",
    "idle": "bench.bench_idle",
    "crypto": "bench.bench_crypto",
    "files": "bench.bench_files",
    "storm": "bench.bench_storm",
    "search": "bench.bench_search",
    "vault": "bench.bench_vault",
    "cluster": "bench.bench_cluster",
    "mls": "bench.bench_mls",
    "groups": "bench.bench_groups",
    "group-relay": "bench.bench_group_relay",
    "group-cli": "bench.bench_group_cli",
    "group-scale": "bench.bench_group_scale",
    "daemon": "bench.bench_daemon",
    "chatlog": "bench.bench_chatlog",
}


def _run_one(name: str, quick: bool) -> list[Row]:
    module = importlib.import_module(BENCHMARKS[name])
    if name == "crypto":
        return _crypto_rows(module, quick)
    rows: list[Row] = module.run(quick=quick)
    return rows


def _crypto_rows(module: Any, quick: bool) -> list[Row]:
    """bench_crypto has its own row shape; fold it into the common one."""
    if quick:
        module.REPEATS = 2
    rows = []
    raw = module.run()
    ratchet = next(r for r in raw if r["name"].startswith("ratchet 1KiB encrypt"))
    for item in raw:
        out: Row = {
            "bench": "crypto",
            "name": item["name"],
            "value": item["ms_per_op"],
            "unit": "ms/op",
            "spread_pct": item["spread_pct"],
            "repeats": module.REPEATS,
        }
        if "ratchet_slowdown" in item:
            # This row is a baseline: show the ratchet against it.
            out.update(
                name=f"ratchet 1KiB encrypt+decrypt vs {item['name']}",
                value=ratchet["ms_per_op"],
                spread_pct=ratchet["spread_pct"],
                baseline=item["ms_per_op"],
                baseline_spread_pct=item["spread_pct"],
                ratio=item["ratchet_slowdown"],
            )
            if "reused key" in item["name"]:
                out.update(target="≤ 3x", met=item["ratchet_slowdown"] <= 3)
            if "over_reused" in item:
                out["note"] = (
                    f"this baseline alone is {item['over_reused']}x the reused-key AES-GCM"
                )
        elif item is ratchet:
            continue
        rows.append(out)
    return rows


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"{meta['date']} on {meta['machine']}; `python -m bench {' '.join(meta['args'])}` "
        f"took {meta['seconds']:.0f} s; 1-minute load average before it: "
        f"{meta.get('load_average_before', '?')} (other work shares the machine). "
        "Value and baseline are medians over the repeats; spread is (max - min) / median; "
        "ratio is the median of per-repeat ratios (value / baseline).",
        "",
        "| bench | figure | value | unit | spread | baseline | spread | ratio | target | met |"
        " notes |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in rows:
        cells = [
            r["bench"],
            r["name"],
            _fmt(r["value"]),
            r["unit"],
            f"{r['spread_pct']:.0f} %" if r.get("repeats", 1) > 1 else "",
            _fmt(r.get("baseline")),
            f"{r['baseline_spread_pct']:.0f} %"
            if "baseline_spread_pct" in r and r.get("repeats", 1) > 1
            else "",
            f"{r['ratio']:.3g}x" if r.get("ratio") is not None else "",
            r.get("target", ""),
            _fmt(r.get("met")),
            r.get("note", "").replace("|", "/"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    names = args.names or list(BENCHMARKS)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    failed: list[str] = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        try:
            rows += _run_one(name, args.quick)
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            failed.append(name)
            print(f"   {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        print(f"   {name}: {time.perf_counter() - begun:.0f} s", file=sys.stderr, flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "args": sys.argv[1:] if argv is None else argv,
        "seconds": round(time.perf_counter() - started),
        "failed": failed,
        "load_average_before": round(load_before, 2),
    }
    for r in rows:
        r.setdefault("date", meta["date"])
    RESULTS.mkdir(exist_ok=True)
    if args.quick:
        md, js = RESULTS / "quick.md.tmp", RESULTS / "quick.json.tmp"
    else:
        md, js = RESULTS / "latest.md", RESULTS / "latest.json"
        rows = _merge(js, rows, [n for n in names if n not in failed])
    text = markdown(rows, meta)
    md.write_text(text)
    js.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    print(text)
    print(f"written to {md} and {js.name}", file=sys.stderr)
    return 1 if failed else 0


def _merge(previous: Path, rows: list[Row], ran: list[str]) -> list[Row]:
    """A subset run replaces its benchmarks' rows in latest.* and keeps the others."""
    kept: list[Row] = []
    if previous.exists():
        old = json.loads(previous.read_text()).get("rows", [])
        kept = [r for r in old if r["bench"] not in ran]
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    merged = kept + rows
    merged.sort(key=lambda r: order.get(r["bench"], len(order)))
    return merged


if __name__ == "__main__":
    sys.exit(main())
