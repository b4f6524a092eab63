"""A group of 100 created from the CLI, against a CLI command that creates nothing,
measured in the same run, rounds interleaved.

Issue 20's target: a group of 100 created in under 2 s from the CLI. Each round
times `securechat-cli group-create NAME` with 99 members (one process: start,
vault unlock, sign-in, 99 key packages fetched and checked against the pins,
one Commit with a Welcome for 99, accepted by the relay) and, as its baseline,
`securechat-cli groups` (the same start, unlock and sign-in, and nothing
else): their difference is what the group itself costs. The members are
registered and sign in once beforehand through the client core, which
publishes their key packages.

Run: .venv/bin/python -m bench group-cli
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_relay import UNLIMITED
from bench.common import PASSWORD, Row, Server, log, row, scratch, users
from securechat.client.core import ChatClient

MEMBERS = 100
TARGET_MS = 2000.0


async def _register(url: str, root: Path, names: list[str]) -> None:
    """Each member's vault and identity, and its key packages on the relay."""

    async def one(name: str) -> None:
        client = ChatClient(url, root / name, reconnect=False)
        try:
            await client.connect()
            await client.register(name, PASSWORD)
            await client.settle()
        finally:
            await client.close()

    for start in range(0, len(names), 10):
        await asyncio.gather(*(one(n) for n in names[start : start + 10]))


def _cli_ms(url: str, home: Path, user: str, *args: str) -> float:
    env = {**os.environ, "SECURECHAT_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "securechat.client.cli", "--server", url]
    command += ["--data-dir", str(home), "--user", user, *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    assert done.returncode == 0, done.stderr
    return elapsed


def run(quick: bool = False) -> list[Row]:
    rounds = 1 if quick else 3
    members = 20 if quick else MEMBERS
    load = os.getloadavg()[0]
    with scratch("group-cli") as root, Server("relay", root / "relay", env=UNLIMITED) as server:
        names = users("m", members)
        log(f"registering {members} users through the client core")
        asyncio.run(_register(server.url, root, names))
        creator, others = names[0], names[1:]
        created, baseline = [], []
        for r in range(rounds):
            baseline.append(_cli_ms(server.url, root / creator, creator, "groups"))
            created.append(
                _cli_ms(server.url, root / creator, creator, "group-create", f"g{r}", *others)
            )
            log(f"round {r + 1}: group-create {created[-1]:.0f} ms, groups {baseline[-1]:.0f} ms")
    result = row(
        "group-cli",
        f"securechat-cli group-create with {members} members vs `groups`",
        created,
        "ms",
        baseline,
        target=f"< {TARGET_MS:.0f} ms",
        note=f"SQLite relay; one process per command; load average {load:.1f} at the start",
        digits=0,
    )
    result["met"] = result["value"] < TARGET_MS
    own = [c - b for c, b in zip(created, baseline, strict=True)]
    group_only = row(
        "group-cli",
        f"what the group of {members} adds: group-create minus `groups`",
        own,
        "ms",
        target=f"< {TARGET_MS:.0f} ms",
        note="the CLI's own start, unlock and sign-in taken out",
        digits=0,
    )
    group_only["met"] = group_only["value"] < TARGET_MS
    return [result, group_only]
