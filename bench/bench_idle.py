"""Memory per idle, authenticated connection: 5,000 clients logged in and silent.

Each repeat starts a fresh server, warms it up with a few logins (lazy
imports, the bcrypt threads), reads its RSS, logs 5,000 distinct users in
(the relay allows 5 connections per user), waits for the relay to settle and
reads RSS again. Per connection = growth / 5,000. Baseline: the bare
forwarder holding the same 5,000 websockets.

Run: .venv/bin/python -m bench idle
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.common import (
    PASSWORD,
    REPO,
    Row,
    Server,
    log,
    memory_kib,
    row,
    run_loadgen,
    scratch,
    users,
)

NAME = "idle"


def _hold(server: Server, names: list[str]) -> float:
    """RSS growth (KiB) of the server while the load generator holds `names` logged in."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None
    spec: dict[str, Any] = {
        "mode": "idle",
        "port": server.port,
        "server_pid": server.pid,
        "users": names,
        "password": PASSWORD,
        "parallel": 32,
    }
    before = memory_kib(server.pid)
    try:
        proc.stdin.write((json.dumps(spec) + "\n").encode())
        proc.stdin.flush()
        ready = json.loads(proc.stdout.readline())
        time.sleep(2.0)
        after = memory_kib(server.pid)
        log(
            f"{server.kind:>5}: {ready['ready']} logged in in {ready['login_s']} s; "
            f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
            f"{(after - before) / len(names):.1f} KiB per connection"
        )
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (after - before) / len(names)


def run(quick: bool = False) -> list[Row]:
    count = 500 if quick else 5000
    repeats = 1 if quick else 3
    names = users("i", count)
    warm = names[:20]
    per: dict[str, list[float]] = {"relay": [], "bare": []}
    with scratch("idle") as tmp:
        with Server("relay", tmp / "relay") as relay:
            log(f"registering {count} users (bcrypt cost 4)")
            run_loadgen(
                {
                    "mode": "register",
                    "port": relay.port,
                    "server_pid": relay.pid,
                    "users": names,
                    "password": PASSWORD,
                    "parallel": 32,
                }
            )
        for i in range(repeats):
            log(f"repeat {i + 1}/{repeats}")
            for kind in ("bare", "relay"):
                with Server(kind, tmp / kind) as server:
                    _hold(server, warm)
                    time.sleep(0.5)
                    per[kind].append(_hold(server, names))
    return [
        row(
            NAME,
            f"RSS per idle authenticated connection ({count:,} connected)",
            per["relay"],
            "KiB",
            per["bare"],
            target="≤ 2x bare",
            met=sorted(r / b for r, b in zip(per["relay"], per["bare"], strict=True))[
                len(per["relay"]) // 2
            ]
            <= 2,
            digits=1,
        )
    ]
