"""Throughput of 1, 2 and 3 relay nodes sharing PostgreSQL and Redis, on this machine.

Clients are spread round robin over the nodes and client i sends to client
i+1, so most messages cross nodes (store, Redis wake, the other node reads the
queue). The baseline is one node on the same PostgreSQL in the same run; the
embedded default (one node on SQLite) is shown beside it. On two cores, more
nodes cannot add CPU: the figure says what the cross-node path costs, not
what three machines would do (see docs/scaling.md).

Needs PostgreSQL on 127.0.0.1:5432 (database `test`) and Redis on 6379; the
benchmark skips itself when they are missing.

Run: .venv/bin/python -m bench cluster
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from bench.common import PASSWORD, Row, Server, log, row, run_loadgen, scratch, users

NAME = "cluster"
PG = "postgresql://127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
UNLIMITED = {"SECURECHAT_FRAME_RATE": "1000000", "SECURECHAT_FRAME_BURST": "1000000"}


async def _schema(action: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG, timeout=5)
    try:
        sql = f"CREATE SCHEMA {name}" if action == "create" else f"DROP SCHEMA {name} CASCADE"
        await conn.execute(sql)
    finally:
        await conn.close()


def _nodes(tmp: Path, count: int, dsn: str, prefix: str) -> list[Server]:
    env = {
        **UNLIMITED,
        "SECURECHAT_STORE": dsn,
        "SECURECHAT_BUS": REDIS,
        "SECURECHAT_BUS_PREFIX": prefix,
        "SECURECHAT_BLOB_DIR": str(tmp / "blobs"),
    }
    return [Server("relay", tmp / f"node{i}", env=env) for i in range(count)]


def _flood(nodes: list[Server], names: list[str], quick: bool) -> dict[str, Any]:
    result = run_loadgen(
        {
            "mode": "chat",
            "port": nodes[0].port,
            "server_pid": nodes[0].pid,
            "ports": [n.port for n in nodes],
            "server_pids": [n.pid for n in nodes],
            "users": names,
            "password": PASSWORD,
            "body_bytes": 256,
            "warmup": 0.5 if quick else 1.5,
            "duration": 1.5 if quick else 5.0,
            "flood": True,
            "rate": 0,
            "window": 4,
        }
    )
    window: dict[str, Any] = result["windows"][0]
    log(
        f"{len(nodes)} node(s): {window['throughput']:8.0f} msg/s, "
        f"{window['cpu_us_per_msg'] or 0:6.1f} µs CPU/msg, undelivered {result['undelivered']}"
    )
    return window


def run(quick: bool = False) -> list[Row]:
    try:
        schema = "bench_" + secrets.token_hex(4)
        asyncio.run(_schema("create", schema))
    except Exception as exc:
        log(f"cluster benchmark skipped: PostgreSQL unavailable ({exc})")
        return []
    dsn = f"{PG}?search_path={schema}"
    prefix = "bench:" + secrets.token_hex(4)
    repeats = 1 if quick else 3
    names = users("c", 20 if quick else 100)
    counts = [1, 2, 3]
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    sqlite: list[dict[str, Any]] = []
    try:
        with scratch("cluster") as tmp:
            first = _nodes(tmp, 1, dsn, prefix)[0]
            with first:
                run_loadgen(
                    {
                        "mode": "register",
                        "port": first.port,
                        "server_pid": first.pid,
                        "users": names,
                        "password": PASSWORD,
                    }
                )
            single = Server("relay", tmp / "sqlite", env=UNLIMITED)
            with single:
                run_loadgen(
                    {
                        "mode": "register",
                        "port": single.port,
                        "server_pid": single.pid,
                        "users": names,
                        "password": PASSWORD,
                    }
                )
            for i in range(repeats):
                log(f"repeat {i + 1}/{repeats}")
                with single:
                    sqlite.append(_flood([single], names, quick))
                for count in counts:
                    nodes = _nodes(tmp, count, dsn, prefix)
                    for node in nodes:
                        node.start()
                    try:
                        results[count].append(_flood(nodes, names, quick))
                    finally:
                        for node in nodes:
                            node.stop()
    finally:
        asyncio.run(_schema("drop", schema))
    base_tput = [w["throughput"] for w in results[1]]
    base_cpu = [w["cpu_us_per_msg"] or 0 for w in results[1]]
    rows = [
        row(
            NAME,
            "throughput, 1 node on SQLite (embedded default), flood",
            [w["throughput"] for w in sqlite],
            "msg/s",
            base_tput,
            digits=0,
            note="baseline: 1 node on PostgreSQL + Redis",
        ),
    ]
    rows.append(
        row(
            NAME,
            "throughput, 1 node on PostgreSQL + Redis against 1 node on SQLite, flood",
            base_tput,
            "msg/s",
            [w["throughput"] for w in sqlite],
            digits=0,
            target="≥ 0.5x SQLite",
            met=_median_ratio(base_tput, [w["throughput"] for w in sqlite]) >= 0.5,
            note="issue 21: the same guarantees, the database's batch paths",
        )
    )
    for count in counts:
        rows.append(
            row(
                NAME,
                f"throughput, {count} node(s) on PostgreSQL + Redis, flood",
                [w["throughput"] for w in results[count]],
                "msg/s",
                base_tput,
                digits=0,
                note="baseline: 1 node; all nodes share 2 cores with PostgreSQL",
            )
        )
        rows.append(
            row(
                NAME,
                f"CPU per message (all nodes), {count} node(s)",
                [w["cpu_us_per_msg"] or 0 for w in results[count]],
                "µs/msg",
                base_cpu,
                digits=1,
            )
        )
    return rows


def _median_ratio(values: list[float], baselines: list[float]) -> float:
    ratios = sorted(v / b for v, b in zip(values, baselines, strict=True) if b)
    return ratios[len(ratios) // 2] if ratios else 0.0
