"""Rate limits and a fair queue. Pure: time comes from an injectable clock.

`TokenBucket` holds `capacity` tokens; a token spent comes back exactly `period`
seconds later. That keeps a provider's published quota strictly ("4 a minute"
means at most 4 in any 60 seconds), where a classic refill-rate bucket would let
a burst of 4 plus refills through in the first minute.

`FairQueue` hands items out round-robin across requesters, so one user pasting
a hundred links waits behind their own links, not in front of everyone else's.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "OTX_FREE_TIER",
    "VIRUSTOTAL_FREE_TIER",
    "Clock",
    "FairQueue",
    "Limiter",
    "RateLimit",
    "TokenBucket",
]

Clock = Callable[[], float]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` requests in any `period` seconds."""

    count: int
    period: float

    def __str__(self) -> str:
        units = {60.0: "minute", 3600.0: "hour", 86400.0: "day"}
        unit = units.get(self.period, f"{self.period:g} s")
        return f"{self.count}/{unit}"


#: VirusTotal public API: 4 lookups a minute, 500 a day.
VIRUSTOTAL_FREE_TIER = (RateLimit(4, 60.0), RateLimit(500, 86400.0))
#: OTX does not publish a limit; this is a polite default, configurable.
OTX_FREE_TIER = (RateLimit(10_000, 3600.0),)


class TokenBucket:
    """`capacity` tokens; each spent token returns `period` seconds after it was spent."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        if limit.count < 1 or limit.period <= 0:
            raise ValueError(f"a rate limit needs a positive count and period, not {limit}")
        self.limit = limit
        self._clock = clock
        self._spent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0] + self.limit.period <= now:
            self._spent.popleft()

    def available(self) -> int:
        """Tokens that could be spent now."""
        self._expire(self._clock())
        return self.limit.count - len(self._spent)

    def retry_after(self, tokens: int = 1) -> float:
        """Seconds until `tokens` tokens are available (0 when they are now)."""
        now = self._clock()
        self._expire(now)
        missing = len(self._spent) + tokens - self.limit.count
        if missing <= 0:
            return 0.0
        if tokens > self.limit.count:
            return float("inf")
        return self._spent[missing - 1] + self.limit.period - now

    def spend(self, tokens: int = 1) -> None:
        """Record `tokens` spent now; callers check `available()` first."""
        now = self._clock()
        self._spent.extend([now] * tokens)


class Limiter:
    """Several buckets that must all allow a request (e.g. per minute and per day)."""

    def __init__(self, limits: Iterable[RateLimit], clock: Clock) -> None:
        self.clock = clock
        self.buckets = [TokenBucket(limit, clock) for limit in limits]
        self._blocked_until = float("-inf")

    def retry_after(self, tokens: int = 1) -> float:
        """Seconds until every bucket has `tokens` tokens and no pause is in force."""
        pause = max(0.0, self._blocked_until - self.clock())
        return max([pause, *(b.retry_after(tokens) for b in self.buckets)])

    def try_acquire(self, tokens: int = 1) -> bool:
        """Spend `tokens` from every bucket if all have them; otherwise spend nothing."""
        if self.retry_after(tokens) > 0:
            return False
        for bucket in self.buckets:
            bucket.spend(tokens)
        return True

    def pause(self, seconds: float) -> None:
        """Refuse everything for `seconds` (the provider itself said: too many requests)."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)

    def describe(self) -> str:
        """The limits in words, for reasons shown to people."""
        return ", ".join(str(b.limit) for b in self.buckets) or "unlimited"


class FairQueue(Generic[T]):
    """Items queued per requester and handed out round-robin across requesters."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, requester: str, item: T) -> None:
        """Queue `item` behind the requester's earlier items."""
        self._queues.setdefault(requester, deque()).append(item)

    def pop(self) -> tuple[str, T] | None:
        """The next requester's oldest item; that requester then goes to the back."""
        if not self._queues:
            return None
        requester, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        del self._queues[requester]
        if queue:
            self._queues[requester] = queue
        return requester, item

    def remove(self, requester: str, item: T) -> bool:
        """Drop a queued item (a waiter that gave up); True if it was there."""
        queue = self._queues.get(requester)
        if queue is None or item not in queue:
            return False
        queue.remove(item)
        if not queue:
            del self._queues[requester]
        return True
