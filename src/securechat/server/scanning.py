"""The relay's URL scanner service: private prefix lookups and full lookups for signed-in users.

Full lookups can take seconds (provider rate limits queue them), so they run
as tasks and the answer is pushed when ready: a scan never holds up the
connection's other frames, let alone anyone's messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.codec import encode_str
from securechat.protocol.errors import ErrorCode
from securechat.scanner import Scanner, decode_verdict, encode_verdict
from securechat.scanner.verdict import Verdict
from securechat.server.ratelimit import TokenBucket
from securechat.server.store import ScanCacheStore

log = logging.getLogger("securechat.scanning")


class StoreVerdictCache:
    """The scanner's verdict cache in the relay's store, so it survives restarts."""

    def __init__(self, store: ScanCacheStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    async def get(self, key: bytes) -> Verdict | None:
        blob = await self.store.get_scan(key, self.clock())
        if blob is None:
            return None
        try:
            return decode_verdict(blob)
        except msgspec.ValidationError:
            return None

    async def put(self, key: bytes, verdict: Verdict, ttl: float) -> None:
        await self.store.put_scan(key, encode_verdict(verdict), self.clock() + ttl)


class ScanService:
    def __init__(
        self, scanner: Scanner, rate_per_minute: float, clock: Callable[[], float]
    ) -> None:
        self.scanner = scanner
        self.rate_per_minute = rate_per_minute
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def online_scanners(self) -> tuple[str, ...]:
        """The providers a full lookup asks, by name: the client's scan dialog names them."""
        return tuple(p.name for p in self.scanner.providers if p.enabled)

    def _admit(self, user: str, cost: float = 1.0) -> None:
        bucket = self._buckets.get(user)
        if bucket is None:
            burst = max(5.0, self.rate_per_minute / 2)
            bucket = self._buckets[user] = TokenBucket(self.rate_per_minute / 60, burst)
        if not bucket.take(self.clock(), cost):
            raise ProtocolError(ErrorCode.RATE_LIMITED, "too many link checks; wait a minute")

    def prefixes(self, user: str, frame: F.ScanPrefixes) -> F.ScanHashes:
        self._admit(user, cost=0.25)
        matches = [
            F.HashMatch(full_hash=m.full_hash, verdict=str(m.verdict), source=m.source)
            for m in self.scanner.full_hashes_for(frame.prefixes)
        ]
        return F.ScanHashes(rid=frame.rid, matches=matches)

    def full_lookup(self, user: str, frame: F.ScanUrl, reply: Callable[[str], None]) -> None:
        """Starts the lookup; `reply` receives the answer frame when it is ready."""
        self._admit(user)

        async def run() -> None:
            try:
                verdict = await self.scanner.scan(
                    frame.url, requester=user, full_lookup=True, submit=frame.submit
                )
                reply(
                    encode_str(F.ScanVerdict(rid=frame.rid, verdict=msgspec.to_builtins(verdict)))
                )
            except Exception:
                log.exception("scan failed")
                reply(
                    encode_str(
                        F.Error(
                            rid=frame.rid,
                            code=ErrorCode.INTERNAL.value,
                            message="the link check failed; the link is NOT known to be safe",
                        )
                    )
                )

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.scanner.aclose()
