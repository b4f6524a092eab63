"""Failed-login back-off shared by every relay node through Redis.

Without sharing, an attacker spreads guesses over the nodes and gets the
free attempts once per node. Counters and locks are Redis keys with expiry
(`<prefix>:fail:<key>`, `<prefix>:lock:<key>`, and `<prefix>:ok:<key>` for
an address that logged in), so a node's restart forgets nothing; when Redis
is unreachable the node falls back to its own memory rather than refusing
every login.
"""

from __future__ import annotations

import asyncio
from typing import Any

from securechat.server.ratelimit import KNOWN_ADDRESS_TTL, Backoff, LocalFailureLimiter


class RedisFailureLimiter:
    def __init__(
        self, client: Any, prefix: str, backoff: Backoff, known_ttl: float = KNOWN_ADDRESS_TTL
    ) -> None:
        import redis.asyncio as redis

        self._errors = (redis.RedisError, OSError, asyncio.TimeoutError)
        self.client = client
        self.prefix = prefix
        self.policy = backoff
        self.known_ttl = known_ttl
        self.fallback = LocalFailureLimiter(backoff, known_ttl)

    async def retry_after(self, key: str, now: float) -> float:
        try:
            ttl_ms = await self.client.pttl(f"{self.prefix}:lock:{key}")
        except self._errors:
            return await self.fallback.retry_after(key, now)
        return max(0.0, ttl_ms / 1000) if ttl_ms and ttl_ms > 0 else 0.0

    async def failed(self, key: str, now: float) -> None:
        await self.fallback.failed(key, now)
        policy = self.policy
        try:
            # One MULTI/EXEC: a node that dies between the two would leave a counter
            # without expiry, locking that name and address out for good.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(f"{self.prefix}:fail:{key}")
                pipe.expire(f"{self.prefix}:fail:{key}", int(policy.forget))
                count, _ = await pipe.execute()
            delay = policy.delay_after(count)
            if delay > 0:
                await self.client.set(f"{self.prefix}:lock:{key}", 1, px=int(delay * 1000))
        except self._errors:
            return

    async def succeeded(self, key: str) -> None:
        await self.fallback.succeeded(key)
        try:
            await self.client.delete(f"{self.prefix}:fail:{key}", f"{self.prefix}:lock:{key}")
        except self._errors:
            return

    async def remember(self, key: str, now: float) -> None:
        await self.fallback.remember(key, now)
        try:
            await self.client.set(f"{self.prefix}:ok:{key}", 1, px=int(self.known_ttl * 1000))
        except self._errors:
            return

    async def remembered(self, key: str, now: float) -> bool:
        try:
            return bool(await self.client.exists(f"{self.prefix}:ok:{key}"))
        except self._errors:
            return await self.fallback.remembered(key, now)
