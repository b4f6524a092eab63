"""SIGKILL of the relay at random moments under load, then a restart, again and again."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.faults.harness import (
    Ledger,
    User,
    check_exactly_once,
    integrity,
    log_problems,
    relay_rows,
    send_traffic,
    settle,
    sign_up,
)
from tests.procs import RelayProcess


async def _crash_under_load(tmp_path: Path, kills: int, clients: int, seed: int) -> None:
    rng = random.Random(seed)
    relay = RelayProcess(tmp_path / "relay")
    await asyncio.to_thread(relay.start)
    users: list[User] = []
    try:
        users = await sign_up(relay.url, [f"crash{i:02d}" for i in range(clients)])
        ledger = Ledger()
        done = asyncio.Event()
        traffic = asyncio.create_task(_traffic(users, ledger, rng, done))
        accepted_before: list[int] = []
        for _ in range(kills):
            # Random moments: mid write batch, mid delivery, mid acknowledgement.
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            accepted_before.append(sum(len(u.outbox.accepted) for u in users))
            await asyncio.to_thread(relay.kill)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await asyncio.to_thread(relay.start)
        done.set()
        await traffic
        await settle(users, ledger, timeout=60)
        summary = check_exactly_once(users, ledger)
        print(f"\n{kills} kills, accepted before each {accepted_before}: {summary}")
        assert accepted_before[-1] > accepted_before[0], "the load never got going"
        db = relay.data_dir / "relay.sqlite3"
        await asyncio.gather(*(u.close() for u in users))
        users = []
        await asyncio.to_thread(relay.terminate)
        assert integrity(db) == "ok"
        assert relay_rows(db) == 0
        assert log_problems(relay.log) == []
    finally:
        await asyncio.gather(*(u.close() for u in users), return_exceptions=True)
        await asyncio.to_thread(relay.kill)


async def _traffic(users: list[User], ledger: Ledger, rng: random.Random, done: asyncio.Event):
    """Steady load until the kills are over (bounded: at most 200 batches of 200)."""
    for batch in range(200):
        if done.is_set():
            return
        await send_traffic(users, ledger, 200, rng, f"b{batch}-", senders=50)
        await asyncio.sleep(0.02)


async def test_three_sigkills_under_load(tmp_path: Path) -> None:
    """Every envelope accepted across 3 random SIGKILLs reaches the application exactly once."""
    await _crash_under_load(tmp_path, kills=3, clients=30, seed=3)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_ten_sigkills_under_load(tmp_path: Path) -> None:
    """The issue's crash run: 10 SIGKILLs at random moments, 100 clients sending."""
    await _crash_under_load(tmp_path, kills=10, clients=100, seed=10)
