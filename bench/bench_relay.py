"""Relay throughput, server CPU per message and one-to-one latency, against a bare forwarder.

Both servers run as subprocesses side by side; the load generator is a third
process. Every repeat runs the bare forwarder and then the relay with the same
clients, frames and rate, so each ratio compares runs seconds apart.

Scenarios (clients, load):
- 100 clients, flood: as fast as each server accepts, 4 unaccepted sends per
  client. The relay's per-connection frame limit (200/s) is lifted for this
  one scenario only, since it is a policy, not a cost: a flood would hit it.
- 100 clients, 2,000 msg/s paced: latency at a moderate load.
- 1,000 clients, 5,000 msg/s paced: the p99 target (≤ 5 ms), with the default
  5 ms write-batch delay (commit_delay) and again with 1 ms (SECURECHAT_COMMIT_DELAY): on
  SQLite delivery does not wait for the commit, so the delay trades only the
  sender's `accepted` time against CPU (fewer commits, fewer envelopes written).
- 1,000 clients, flood.

Run: .venv/bin/python -m bench relay
"""

from __future__ import annotations

from typing import Any

from bench.common import PASSWORD, Row, Server, log, row, run_loadgen, scratch, users

NAME = "relay"
BODY_BYTES = 256
"""About a short text message after the ratchet and padding, before base64."""

UNLIMITED = {"SECURECHAT_FRAME_RATE": "1000000", "SECURECHAT_FRAME_BURST": "1000000"}


def _scenarios(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [
            {"label": "20 clients, flood", "clients": 20, "flood": True},
            {"label": "20 clients, 500 msg/s", "clients": 20, "rate": 500},
        ]
    return [
        {"label": "100 clients, flood", "clients": 100, "flood": True},
        {"label": "100 clients, 2,000 msg/s", "clients": 100, "rate": 2000},
        {"label": "1,000 clients, 5,000 msg/s", "clients": 1000, "rate": 5000, "p99_target": 5},
        {
            "label": "1,000 clients, 5,000 msg/s, commit_delay 1 ms",
            "clients": 1000,
            "rate": 5000,
            "p99_target": 5,
            "env": {"SECURECHAT_COMMIT_DELAY": "0.001"},
        },
        {"label": "1,000 clients, flood", "clients": 1000, "flood": True},
    ]


def _measure(
    server: Server, names: list[str], scenario: dict[str, Any], quick: bool
) -> dict[str, Any]:
    spec = {
        "mode": "chat",
        "port": server.port,
        "server_pid": server.pid,
        "users": names,
        "password": PASSWORD,
        "body_bytes": BODY_BYTES,
        "warmup": 0.5 if quick else 1.5,
        "duration": 1.5 if quick else 5.0,
        "flood": scenario.get("flood", False),
        "rate": scenario.get("rate", 0),
        "window": 4,
    }
    result = run_loadgen(spec)
    window = result["windows"][0]
    window["undelivered"] = result["undelivered"]
    window["errors"] = result["errors"]
    window["pacer_lag_p99_ms"] = result["pacer_lag_p99_ms"]
    log(
        f"{server.kind:>5}: {window['throughput']:8.0f} msg/s, "
        f"{window['cpu_us_per_msg'] or 0:6.1f} µs CPU/msg (server at "
        f"{100 * window['server_cpu_util']:.0f} %, loadgen at "
        f"{100 * window['loadgen_cpu_util']:.0f} %), p50 {window['p50_ms'] or 0:.2f} ms, "
        f"p99 {window['p99_ms'] or 0:.2f} ms, errors {sum(result['errors'].values())}, "
        f"undelivered {result['undelivered']}"
    )
    return window


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    scenarios = _scenarios(quick)
    most = max(s["clients"] for s in scenarios)
    names = users("u", most)
    rows: list[Row] = []
    with scratch("relay") as tmp:
        relay = Server("relay", tmp / "relay", env=UNLIMITED)
        relay.start()
        try:
            log(f"registering {most} users (bcrypt cost 4)")
            run_loadgen(
                {
                    "mode": "register",
                    "port": relay.port,
                    "server_pid": relay.pid,
                    "users": names,
                    "password": PASSWORD,
                }
            )
        finally:
            relay.stop()
        for scenario in scenarios:
            env = (UNLIMITED if scenario.get("flood") else {}) | scenario.get("env", {})
            relay = Server("relay", tmp / "relay", env=env)
            bare = Server("bare", tmp / "bare")
            with bare, relay:
                chosen = names[: scenario["clients"]]
                results: dict[str, list[dict[str, Any]]] = {"bare": [], "relay": []}
                for i in range(repeats):
                    log(f"{scenario['label']}: repeat {i + 1}/{repeats}")
                    for server in (bare, relay):
                        results[server.kind].append(_measure(server, chosen, scenario, quick))
            rows += _rows(scenario, results["relay"], results["bare"])
    return rows


def _rows(
    scenario: dict[str, Any], relay: list[dict[str, Any]], bare: list[dict[str, Any]]
) -> list[Row]:
    label = scenario["label"]

    def values(runs: list[dict[str, Any]], key: str) -> list[float]:
        return [float(r[key] or 0) for r in runs]

    def health(runs: list[dict[str, Any]]) -> str:
        load = max(r["loadgen_cpu_util"] for r in runs)
        errors = sum(sum(r["errors"].values()) for r in runs)
        lost = sum(r["undelivered"] for r in runs)
        text = f"loadgen at ≤{100 * load:.0f} % CPU"
        if errors:
            text += f"; {errors} errors: {sorted({k for r in runs for k in r['errors']})}"
        if lost:
            text += f"; {lost} undelivered after 10 s"
        return text

    cpu_relay, cpu_bare = values(relay, "cpu_us_per_msg"), values(bare, "cpu_us_per_msg")
    cpu_ratios = sorted(r / b for r, b in zip(cpu_relay, cpu_bare, strict=True) if b)
    rows = [
        row(
            NAME,
            f"server CPU per message, {label}",
            cpu_relay,
            "µs/msg",
            cpu_bare,
            target="≤ 1.5x bare",
            met=cpu_ratios[len(cpu_ratios) // 2] <= 1.5 if cpu_ratios else None,
            note=health(relay),
            digits=1,
        )
    ]
    if scenario.get("flood"):
        tput_relay, tput_bare = values(relay, "throughput"), values(bare, "throughput")
        ratios = sorted(r / b for r, b in zip(tput_relay, tput_bare, strict=True) if b)
        rows.append(
            row(
                NAME,
                f"throughput, {label}",
                tput_relay,
                "msg/s",
                tput_bare,
                target="≥ 0.6x bare",
                met=ratios[len(ratios) // 2] >= 0.6,
                note="bare: " + health(bare),
                digits=0,
            )
        )
        return rows
    p99_target = scenario.get("p99_target")
    p99 = values(relay, "p99_ms")
    rows += [
        row(NAME, f"p50 latency, {label}", values(relay, "p50_ms"), "ms", values(bare, "p50_ms")),
        row(
            NAME,
            f"p99 latency, {label}",
            p99,
            "ms",
            values(bare, "p99_ms"),
            target=f"≤ {p99_target} ms" if p99_target else "",
            met=sorted(p99)[len(p99) // 2] <= p99_target if p99_target else None,
            note="bare: " + health(bare),
        ),
    ]
    return rows
