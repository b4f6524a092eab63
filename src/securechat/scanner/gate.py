"""Async plumbing around the pure limiter: a fair per-provider gate and single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from securechat.scanner.ratelimit import FairQueue, Limiter

__all__ = ["ProviderGate", "SingleFlight", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(eq=False)
class _Waiter:
    tokens: int
    deadline: float
    future: asyncio.Future[bool] = field(repr=False)


class ProviderGate:
    """Lets requests through a provider's limiter, fairly across requesters.

    A request that finds tokens and nobody waiting goes straight through. Otherwise
    it joins a round-robin queue and waits up to `max_wait` seconds (on the limiter's
    clock); if its turn cannot come by then it is refused, and the caller reports
    the provider as over quota rather than making the user wait indefinitely.
    """

    def __init__(self, limiter: Limiter, *, max_wait: float = 30.0, sleep: Sleep = asyncio.sleep):
        self.limiter = limiter
        self.max_wait = max_wait
        self._sleep = sleep
        self._queue: FairQueue[_Waiter] = FairQueue()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Requests queued right now."""
        return len(self._queue)

    async def acquire(self, requester: str, tokens: int = 1) -> bool:
        """True once the request may go out; False if it would wait past `max_wait`."""
        idle = self._dispatcher is None or self._dispatcher.done()
        if idle and self.limiter.try_acquire(tokens):
            return True
        if self.max_wait <= 0 or self.limiter.retry_after(tokens) > self.max_wait:
            return False
        waiter = _Waiter(
            tokens=tokens,
            deadline=self.limiter.clock() + self.max_wait,
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.push(requester, waiter)
        if idle:
            self._dispatcher = asyncio.create_task(self._dispatch())
        try:
            return await waiter.future
        finally:
            self._queue.remove(requester, waiter)

    async def _dispatch(self) -> None:
        while (entry := self._queue.pop()) is not None:
            _, waiter = entry
            while not waiter.future.done():
                wait = self.limiter.retry_after(waiter.tokens)
                if wait <= 0 and self.limiter.try_acquire(waiter.tokens):
                    waiter.future.set_result(True)
                elif self.limiter.clock() + wait > waiter.deadline:
                    waiter.future.set_result(False)
                else:
                    await self._sleep(wait)

    async def aclose(self) -> None:
        """Stop dispatching; queued requests are refused."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        while (entry := self._queue.pop()) is not None:
            if not entry[1].future.done():
                entry[1].future.set_result(False)


class SingleFlight(Generic[K, V]):
    """Concurrent calls with the same key share one execution of the work.

    The work runs in its own task, so a caller that gives up (is cancelled) does
    not cancel it for the others.
    """

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    async def do(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """Run `work()` unless a call with `key` is already running; share its result."""
        task = self._inflight.get(key)
        if task is None:

            async def run() -> V:
                return await work()

            task = asyncio.create_task(run())
            self._inflight[key] = task

            def forget(done: asyncio.Task[V]) -> None:
                if self._inflight.get(key) is done:
                    del self._inflight[key]

            task.add_done_callback(forget)
        return await asyncio.shield(task)
