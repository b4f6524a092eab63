"""Soak: many clients, many envelopes, networks dropping and apps restarting under load.

The relay runs as a real process so its memory can be read from /proc.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import (
    Ledger,
    User,
    chaos,
    check_exactly_once,
    eventually,
    log_problems,
    relay_rows,
    rss_kib,
    send_traffic,
    settle,
    sign_up,
)
from tests.procs import RelayProcess


@dataclass(frozen=True)
class Soak:
    clients: int
    messages: int
    warmup: int
    rounds: int
    chaos_every: float
    rss_total_kib: int
    rss_last_round_kib: int
    timeout: float


async def _soak(tmp_path: Path, plan: Soak, seed: int) -> None:
    rng = random.Random(seed)
    relay = RelayProcess(tmp_path / "relay")
    await asyncio.to_thread(relay.start)
    assert relay.proc is not None
    users: list[User] = []
    try:
        users = await sign_up(relay.url, [f"soak{i:03d}" for i in range(plan.clients)])
        ledger = Ledger()
        # Warm-up runs the same mix as the measured run, so pools, caches and
        # SQLite's page cache are at their working size before the baseline.
        # Both readings are taken with every client gone: per-connection state
        # (its writer, buffers, the recently-acknowledged sids) must go with it.
        await _round(users, ledger, plan.warmup, rng, "w", plan)
        await settle(users, ledger, timeout=plan.timeout)
        check_exactly_once(users, ledger)

        readings = [await _quiet_rss(relay, users)]

        started = time.monotonic()
        hits = 0
        share = (plan.messages - plan.warmup) // plan.rounds
        for round_ in range(plan.rounds):
            await asyncio.gather(*(u.restart() for u in users))
            hits += await _round(users, ledger, share, rng, f"m{round_}-", plan)
            await settle(users, ledger, timeout=plan.timeout)
            summary = check_exactly_once(users, ledger)
            readings.append(await _quiet_rss(relay, users))
        elapsed = time.monotonic() - started
        print(
            f"\nsoak {plan.clients} clients: {summary}, {hits} faults, "
            f"{elapsed:.1f} s, relay RSS after each round {readings} KiB"
        )
        assert readings[-1] - readings[0] < plan.rss_total_kib, readings
        assert readings[-1] - readings[-2] < plan.rss_last_round_kib, readings
        assert log_problems(relay.log) == []
    finally:
        await asyncio.gather(*(u.close() for u in users), return_exceptions=True)
        await asyncio.to_thread(relay.kill)


async def _round(
    users: list[User], ledger: Ledger, count: int, rng: random.Random, prefix: str, plan: Soak
) -> int:
    stop = asyncio.Event()
    trouble = asyncio.create_task(chaos(users, rng, stop, plan.chaos_every))
    try:
        await send_traffic(users, ledger, count, rng, prefix)
    finally:
        stop.set()
        hits = await trouble
    return hits


async def _quiet_rss(relay: RelayProcess, users: list[User]) -> int:
    """The relay's RSS once every envelope is acknowledged and every client has gone."""
    assert relay.proc is not None
    db = relay.data_dir / "relay.sqlite3"
    assert await eventually(lambda: relay_rows(db) == 0, timeout=30), relay_rows(db)
    await asyncio.gather(*(u.close() for u in users))
    async with httpx.AsyncClient() as http:

        async def all_closed() -> bool:
            text = (await http.get(relay.operator_url + "/metrics")).text
            return "securechat_connections 0.0\n" in text

        assert await eventually(all_closed, timeout=10), "connections left open on the relay"
    await asyncio.sleep(0.5)
    return rss_kib(relay.proc.pid)


# Memory. Readings are taken with every envelope acknowledged and every client
# gone, after a warm-up with the same mix, so pools, SQLite's page cache (2 MiB)
# and the allocator are at their working size. What is left is allocator
# high-water noise, which flattens out: measured here it grows by less than
# 1 MiB per 15,000 envelopes and by less each round. A leak grows linearly
# instead, so the last round is held to its own bound: 4 MiB over 30,000
# envelopes catches anything above ~140 bytes kept per envelope (the envelope
# record alone is bigger), and 16 MiB bounds the whole run.
SHORT = Soak(
    clients=50,
    messages=5_000,
    warmup=1_000,
    rounds=2,
    chaos_every=0.02,
    rss_total_kib=8_192,
    rss_last_round_kib=4_096,
    timeout=60,
)
LONG = Soak(
    clients=500,
    messages=100_000,
    warmup=10_000,
    rounds=3,
    chaos_every=0.02,
    rss_total_kib=16_384,
    rss_last_round_kib=4_096,
    timeout=300,
)


async def test_soak_short(tmp_path: Path) -> None:
    """50 clients, 5,000 envelopes, drops and restarts: none lost, none twice, memory flat."""
    await _soak(tmp_path, SHORT, seed=8)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_soak_long(tmp_path: Path) -> None:
    """The issue's soak: 500 clients and 100,000 envelopes under random drops and restarts."""
    await _soak(tmp_path, LONG, seed=500)
