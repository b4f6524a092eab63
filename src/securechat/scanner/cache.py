"""The verdict cache: a tiny async interface and an in-memory implementation.

Keys are SHA-256 hashes of canonical URLs (`canonical.url_key`), so a store behind
this interface never holds a URL in clear. Verdicts serialise with
`verdict.encode_verdict` / `decode_verdict` for stores that need bytes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from securechat.scanner.ratelimit import Clock
from securechat.scanner.verdict import TRANSIENT_FAILURES, Rating, Verdict

__all__ = ["CacheTTL", "MemoryVerdictCache", "VerdictCache"]


class VerdictCache(Protocol):
    """Where provider verdicts are kept between scans."""

    async def get(self, key: bytes) -> Verdict | None:
        """The verdict stored under `key`, or None if absent or expired."""
        ...

    async def put(self, key: bytes, verdict: Verdict, ttl: float) -> None:
        """Store `verdict` under `key` for `ttl` seconds."""
        ...


@dataclass(frozen=True, slots=True)
class CacheTTL:
    """How long a provider verdict stays fresh, in seconds, by what it says."""

    malicious: float = 24 * 3600.0
    suspicious: float = 6 * 3600.0
    safe: float = 6 * 3600.0
    unknown: float = 15 * 60.0
    #: any provider failed for a reason that may pass (quota, outage, timeout)
    transient: float = 60.0

    def for_verdict(self, verdict: Verdict) -> float:
        """The TTL for one verdict; a bad verdict outlives a provider's hiccup."""
        if verdict.rating is Rating.MALICIOUS:
            return self.malicious
        if any(p.status in TRANSIENT_FAILURES for p in verdict.providers):
            return self.transient
        return {
            Rating.SUSPICIOUS: self.suspicious,
            Rating.SAFE: self.safe,
        }.get(verdict.rating, self.unknown)


class MemoryVerdictCache:
    """A bounded in-process cache; the least recently used entry goes first."""

    def __init__(self, *, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[bytes, tuple[float, Verdict]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: bytes) -> Verdict | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, verdict = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verdict

    async def put(self, key: bytes, verdict: Verdict, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, verdict)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
