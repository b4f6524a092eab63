"""Failed-login back-off kept in the relay's store.

In memory a restart forgot every counter: an attacker who restarted the
count by waiting for a deploy, or crashing the relay, got the free attempts
again. The store holds one row per key (`throttle`); a node of a cluster
keeps them in Redis instead (`redis_limits.py`), where every node sees them.
"""

from __future__ import annotations

from securechat.server.ratelimit import KNOWN_ADDRESS_TTL, Backoff
from securechat.server.store import Throttle, ThrottleStore


class StoreFailureLimiter:
    def __init__(
        self,
        store: ThrottleStore,
        prefix: str,
        backoff: Backoff,
        known_ttl: float = KNOWN_ADDRESS_TTL,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.policy = backoff
        self.known_ttl = known_ttl

    async def retry_after(self, key: str, now: float) -> float:
        state = await self.store.get_throttle(f"{self.prefix}:fail:{key}")
        if state is None or now - state.last > self.policy.forget:
            return 0.0
        return max(0.0, state.locked_until - now)

    async def failed(self, key: str, now: float) -> None:
        name = f"{self.prefix}:fail:{key}"
        count = await self.store.count_failure(name, now, self.policy.forget)
        delay = self.policy.delay_after(count)
        if delay > 0:
            await self.store.put_throttle(name, Throttle(count, now + delay, now))

    async def succeeded(self, key: str) -> None:
        await self.store.delete_throttle(f"{self.prefix}:fail:{key}")

    async def remember(self, key: str, now: float) -> None:
        await self.store.put_throttle(f"{self.prefix}:ok:{key}", Throttle(0, 0.0, now))

    async def remembered(self, key: str, now: float) -> bool:
        state = await self.store.get_throttle(f"{self.prefix}:ok:{key}")
        return state is not None and now - state.last <= self.known_ttl
