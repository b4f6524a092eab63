"""Token buckets, the fair queue, the provider gate and single-flight."""

from __future__ import annotations

import asyncio

from securechat.scanner import FairQueue, Limiter, RateLimit, TokenBucket
from securechat.scanner.gate import ProviderGate, SingleFlight
from tests.scanner.fakes import FakeClock


def test_bucket_holds_the_limit_in_any_window() -> None:
    """'4 a minute' means at most 4 in any 60 s, not 4 plus refills."""
    clock = FakeClock()
    limiter = Limiter([RateLimit(4, 60.0)], clock)
    granted = []
    for _ in range(120):
        if limiter.try_acquire():
            granted.append(clock())
        clock.advance(1.0)
    assert all(
        later - earlier >= 60.0 for earlier, later in zip(granted, granted[4:], strict=False)
    )
    assert len(granted) == 8


def test_daily_bucket_bounds_the_minute_bucket() -> None:
    """Both VirusTotal limits apply: the daily one stops traffic the minute one allows."""
    clock = FakeClock()
    limiter = Limiter([RateLimit(4, 60.0), RateLimit(6, 86400.0)], clock)
    count = 0
    for _ in range(10 * 60):
        count += limiter.try_acquire()
        clock.advance(1.0)
    assert count == 6
    assert limiter.retry_after() > 3600


def test_retry_after_says_when() -> None:
    """A refused caller learns how long until a token returns."""
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(1, 60.0), clock)
    bucket.spend()
    clock.advance(15.0)
    assert bucket.retry_after() == 45.0


def test_pause_blocks_everything() -> None:
    """After the provider itself answers 429 we back off even with tokens left."""
    clock = FakeClock()
    limiter = Limiter([RateLimit(100, 60.0)], clock)
    limiter.pause(30.0)
    assert not limiter.try_acquire()
    clock.advance(30.0)
    assert limiter.try_acquire()


def test_fair_queue_is_round_robin() -> None:
    """A requester with many items cannot starve one that arrives later with few."""
    queue: FairQueue[str] = FairQueue()
    for i in range(4):
        queue.push("alice", f"a{i}")
    queue.push("bob", "b0")
    queue.push("bob", "b1")
    order = [entry[1] for entry in iter(queue.pop, None)]
    assert order == ["a0", "b0", "a1", "b1", "a2", "a3"]


async def test_gate_serves_requesters_fairly() -> None:
    """Under a tight limit, bob's two requests go out before alice's backlog drains."""
    clock = FakeClock()
    gate = ProviderGate(Limiter([RateLimit(1, 1.0)], clock), max_wait=100.0, sleep=clock.sleep)
    order: list[str] = []

    async def ask(who: str) -> None:
        assert await gate.acquire(who)
        order.append(who)

    tasks = [asyncio.create_task(ask("alice")) for _ in range(6)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(ask("bob")) for _ in range(2)]
    await asyncio.gather(*tasks)
    # FIFO would put bob at 6 and 7; round-robin interleaves him once he is queued.
    assert [i for i, who in enumerate(order) if who == "bob"] == [3, 5]


async def test_gate_refuses_past_max_wait() -> None:
    """Requests that would wait longer than allowed are refused at once, not hung."""
    clock = FakeClock()
    gate = ProviderGate(Limiter([RateLimit(1, 60.0)], clock), max_wait=10.0, sleep=clock.sleep)
    assert await gate.acquire("alice")
    assert not await gate.acquire("alice")


async def test_single_flight_shares_one_call() -> None:
    """Twenty concurrent asks for one key run the work once and all get its result."""
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    results = await asyncio.gather(*(flight.do("k", work) for _ in range(20)))
    assert results == [42] * 20
    assert calls == 1
    assert len(flight) == 0


async def test_single_flight_survives_a_cancelled_caller() -> None:
    """One impatient caller giving up must not cancel the work for everyone else."""
    flight: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0.02)
        return 7

    first = asyncio.create_task(flight.do("k", work))
    second = asyncio.create_task(flight.do("k", work))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 7
