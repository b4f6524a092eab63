"""Rate limits that the relay applies per connection, per user and per address.

Pure: time comes in as an argument, so tests drive a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens a second up to `burst`; a frame spends one."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass(slots=True)
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class Backoff:
    """Growing lock-out after repeated failures (logins, resets) for one key.

    The first `free` failures cost nothing; after that each one doubles the
    wait from `base` up to `ceiling`. Failures are forgotten after `forget`
    seconds of quiet, and a success clears them.
    """

    free: int = 5
    base: float = 1.0
    ceiling: float = 900.0
    forget: float = 3600.0
    max_keys: int = 100_000
    _state: dict[str, _Failures] = field(default_factory=dict)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        entry = self._state.get(key)
        if entry is None:
            return 0.0
        if now - entry.last > self.forget:
            del self._state[key]
            return 0.0
        return max(0.0, entry.locked_until - now)

    def failed(self, key: str, now: float) -> None:
        entry = self._state.get(key)
        if entry is None:
            if len(self._state) >= self.max_keys:
                self._evict(now)
            entry = self._state[key] = _Failures()
        entry.count += 1
        entry.last = now
        if entry.count > self.free:
            entry.locked_until = now + self.delay_after(entry.count)

    def delay_after(self, count: int) -> float:
        """The lock-out after the `count`-th failure in a row (0 while still free)."""
        if count <= self.free:
            return 0.0
        return min(self.ceiling, self.base * 2.0 ** min(count - self.free - 1, 64))

    def succeeded(self, key: str) -> None:
        self._state.pop(key, None)

    def _evict(self, now: float) -> None:
        stale = [k for k, v in self._state.items() if now - v.last > self.forget]
        for key in stale or list(self._state)[: self.max_keys // 10]:
            del self._state[key]


KNOWN_ADDRESS_TTL = 30 * 86400.0
"""How long a successful login or a live session vouches for its address (a session's life)."""


class FailureLimiter(Protocol):
    """Back-off bookkeeping as the account service uses it, in the store or shared in Redis.

    Besides failure counts it remembers keys that succeeded (`remember`): the
    account service marks an address that logged in to a user, so a flood of
    failures against that name from elsewhere only slows its owner.
    """

    async def retry_after(self, key: str, now: float) -> float: ...
    async def failed(self, key: str, now: float) -> None: ...
    async def succeeded(self, key: str) -> None: ...
    async def remember(self, key: str, now: float) -> None: ...
    async def remembered(self, key: str, now: float) -> bool: ...


class LocalFailureLimiter:
    """The pure `Backoff` in this process's memory: what a node uses while Redis is away."""

    def __init__(self, backoff: Backoff, known_ttl: float = KNOWN_ADDRESS_TTL) -> None:
        self.backoff = backoff
        self.known_ttl = known_ttl
        self._known: dict[str, float] = {}

    async def retry_after(self, key: str, now: float) -> float:
        return self.backoff.retry_after(key, now)

    async def failed(self, key: str, now: float) -> None:
        self.backoff.failed(key, now)

    async def succeeded(self, key: str) -> None:
        self.backoff.succeeded(key)

    async def remember(self, key: str, now: float) -> None:
        if len(self._known) >= self.backoff.max_keys:
            self._known = {k: t for k, t in self._known.items() if now - t <= self.known_ttl}
            if len(self._known) >= self.backoff.max_keys:
                self._known.clear()
        self._known[key] = now

    async def remembered(self, key: str, now: float) -> bool:
        seen = self._known.get(key)
        return seen is not None and now - seen <= self.known_ttl
