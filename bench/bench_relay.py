"""Relay throughput, server CPU per message and latency, against two baselines.

The headline baseline is `plain.py`: a plain websockets forwarder, one
receive and one send per message and nothing else, the floor any relay on
this stack stands on. The second is `bare.py`, which speaks the whole
protocol (`accepted`, `deliver`, acks) without validating or storing
anything. All three run as subprocesses side by side; the load generator is
a fourth process that reports its own CPU, so a saturated generator shows.
Every repeat runs plain, bare and relay one after the other with the same
clients, frames and rate, so each ratio compares runs seconds apart.

Two patterns: fixed one-to-one pairs (client i writes to client i+1) and
random peers (each message to a client drawn at random: every client writes
to many contacts, so the relay meets new pairs all the time). The load
generator watches nobody: the relay records who follows whom only on `watch`,
which a client sends once per new conversation, not per message.

Scenarios (clients, load):
- 100 clients, flood, both patterns: as fast as each server accepts, 4
  unaccepted sends per client. The relay's per-connection frame limit
  (200/s) is lifted for floods only, since it is a policy, not a cost.
- 100 clients, 2,000 msg/s paced: latency at a moderate load.
- 1,000 clients, 5,000 msg/s paced, both patterns: the p99 target (≤ 5 ms).
- 1,000 clients in groups of 10, 5,000 copies/s paced: the third p99 pattern
  (group fan-out). The plain forwarder gets each message naming the nine
  other members and writes it to each; bare.py keeps the groups in memory.
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

BASELINES = {"plain": "the plain forwarder", "bare": "bare.py"}
"""Baseline server kind -> how the rows name it."""

CPU_TARGET = {"plain": 1.5, "bare": 1.2}
"""Issue 21: relay CPU per message at most 1.5x the plain forwarder and 1.2x bare.py
(flood, 100 clients)."""

GROUP_SIZE = 10
"""Members of each group in the fan-out scenario: a message is nine copies, and its rate
counts copies (5,000 msg/s there: about 556 group sends a second)."""

THROUGHPUT_TARGET = 0.8
"""Relay throughput at least this share of the plain forwarder's (floods)."""


def _scenarios(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [
            {"label": "20 clients, flood", "clients": 20, "flood": True, "cpu_target": True},
            {
                "label": "20 clients, flood, random peers",
                "clients": 20,
                "flood": True,
                "peers": "random",
            },
            {"label": "20 clients, 500 msg/s", "clients": 20, "rate": 500},
            {
                "label": "20 clients, 500 copies/s, groups of 10",
                "clients": 20,
                "rate": 500,
                "peers": "group",
            },
        ]
    return [
        {"label": "100 clients, flood", "clients": 100, "flood": True, "cpu_target": True},
        {
            "label": "100 clients, flood, random peers",
            "clients": 100,
            "flood": True,
            "peers": "random",
            "cpu_target": True,
        },
        {"label": "100 clients, 2,000 msg/s", "clients": 100, "rate": 2000},
        {"label": "1,000 clients, 5,000 msg/s", "clients": 1000, "rate": 5000, "p99_target": 5},
        {
            "label": "1,000 clients, 5,000 msg/s, random peers",
            "clients": 1000,
            "rate": 5000,
            "peers": "random",
            "p99_target": 5,
        },
        {
            "label": "1,000 clients, 5,000 msg/s, group fan-out (groups of 10)",
            "clients": 1000,
            "rate": 5000,
            "peers": "group",
            "p99_target": 5,
        },
        {"label": "1,000 clients, flood", "clients": 1000, "flood": True},
    ]


def measure(
    server: Server,
    names: list[str],
    scenario: dict[str, Any],
    quick: bool = False,
    duration: float | None = None,
) -> dict[str, Any]:
    """One load-generator run against `server`: the measured window's figures."""
    spec = {
        "mode": "chat",
        "port": server.port,
        "server_pid": server.pid,
        "users": names,
        "password": PASSWORD,
        "body_bytes": BODY_BYTES,
        "warmup": 0.5 if quick else 1.5,
        "duration": duration or (1.5 if quick else 5.0),
        "flood": scenario.get("flood", False),
        "rate": scenario.get("rate", 0),
        "window": 4,
        "peers": scenario.get("peers", "fixed"),
        "group_size": GROUP_SIZE,
        "plain": server.kind == "plain",
    }
    result = run_loadgen(spec)
    window: dict[str, Any] = result["windows"][0]
    if not window["server_cpu_s"] or server.proc is None or server.proc.poll() is not None:
        raise RuntimeError(f"{server.kind} did no work: another process answered on its port")
    window["undelivered"] = result["undelivered"]
    window["errors"] = result["errors"]
    window["pacer_lag_p99_ms"] = result["pacer_lag_p99_ms"]
    window["cpu_us_per_msg_whole"] = result["whole"]["cpu_us_per_msg"]
    log(
        f"{server.kind:>5}: {window['throughput']:8.0f} msg/s, "
        f"{window['cpu_us_per_msg'] or 0:6.1f} µs CPU/msg (whole run, drained: "
        f"{window['cpu_us_per_msg_whole'] or 0:.1f}; server at "
        f"{100 * window['server_cpu_util']:.0f} %, waiting for a core "
        f"{100 * window['server_wait_share']:.0f} %, loadgen at "
        f"{100 * window['loadgen_cpu_util']:.0f} %), accepted {window['accepted']} "
        f"delivered {window['delivered']}, p50 {window['p50_ms'] or 0:.2f} ms, "
        f"p99 {window['p99_ms'] or 0:.2f} ms, errors {sum(result['errors'].values())}, "
        f"undelivered {result['undelivered']}"
    )
    return window


def register(server: Server, names: list[str]) -> None:
    log(f"registering {len(names)} users (bcrypt cost 4)")
    run_loadgen(
        {
            "mode": "register",
            "port": server.port,
            "server_pid": server.pid,
            "users": names,
            "password": PASSWORD,
        }
    )


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    scenarios = _scenarios(quick)
    most = max(s["clients"] for s in scenarios)
    names = users("u", most)
    rows: list[Row] = []
    with scratch("relay") as tmp:
        with Server("relay", tmp / "relay", env=UNLIMITED) as relay:
            register(relay, names)
        for scenario in scenarios:
            env = UNLIMITED if scenario.get("flood") else {}
            servers = [
                Server("plain", tmp / "plain"),
                Server("bare", tmp / "bare"),
                Server("relay", tmp / "relay", env=env),
            ]
            results: dict[str, list[dict[str, Any]]] = {s.kind: [] for s in servers}
            for server in servers:
                server.start()
            try:
                chosen = names[: scenario["clients"]]
                for i in range(repeats):
                    log(f"{scenario['label']}: repeat {i + 1}/{repeats}")
                    for server in servers:
                        results[server.kind].append(measure(server, chosen, scenario, quick))
            finally:
                for server in servers:
                    server.stop()
            rows += _rows(scenario, results)
    return rows


def _values(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key] or 0) for r in runs]


def _median_ratio(values: list[float], baselines: list[float]) -> float | None:
    ratios = sorted(v / b for v, b in zip(values, baselines, strict=True) if b)
    return ratios[len(ratios) // 2] if ratios else None


def health(runs: list[dict[str, Any]]) -> str:
    """The load generator's CPU (saturated?), the server's wait for a core (starved by the
    neighbours?), errors and losses of one server's runs."""
    load = max(r["loadgen_cpu_util"] for r in runs)
    waited = max(r.get("server_wait_share", 0.0) for r in runs)
    errors = sum(sum(r["errors"].values()) for r in runs)
    lost = sum(r["undelivered"] for r in runs)
    text = f"loadgen at ≤{100 * load:.0f} % CPU; server waited for a core ≤{100 * waited:.0f} %"
    if errors:
        text += f"; {errors} errors: {sorted({k for r in runs for k in r['errors']})}"
    if lost:
        text += f"; {lost} undelivered after 10 s"
    return text


def _rows(scenario: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    """Each figure of the relay against each baseline; targets where issue 21 sets them."""
    label = scenario["label"]
    relay = results["relay"]
    rows: list[Row] = []
    figures: list[tuple[str, str, str, int]] = [
        ("server CPU per message", "cpu_us_per_msg", "µs/msg", 1)
    ]
    if scenario.get("flood"):
        figures.append(("throughput", "throughput", "msg/s", 0))
    else:
        figures += [("p50 latency", "p50_ms", "ms", 3), ("p99 latency", "p99_ms", "ms", 3)]
    for figure, key, unit, digits in figures:
        for kind, named in BASELINES.items():
            base = results[kind]
            values, baselines = _values(relay, key), _values(base, key)
            ratio = _median_ratio(values, baselines)
            target, met = "", None
            if key == "cpu_us_per_msg" and scenario.get("cpu_target") and ratio is not None:
                target, met = f"≤ {CPU_TARGET[kind]}x {kind}", ratio <= CPU_TARGET[kind]
            elif key == "throughput" and kind == "plain" and ratio is not None:
                target, met = f"≥ {THROUGHPUT_TARGET}x plain", ratio >= THROUGHPUT_TARGET
            elif key == "p99_ms" and scenario.get("p99_target") and kind == "plain":
                p99 = sorted(values)[len(values) // 2]
                target, met = f"≤ {scenario['p99_target']} ms", p99 <= scenario["p99_target"]
            rows.append(
                row(
                    NAME,
                    f"{figure}, {label}, against {named}",
                    values,
                    unit,
                    baselines,
                    target=target,
                    met=met,
                    note=f"relay: {health(relay)}; {kind}: {health(base)}",
                    digits=digits,
                )
            )
    return rows
