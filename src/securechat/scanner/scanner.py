"""The Scanner façade: heuristics, blocklists, cache and (when asked) providers.

Two ways to use it on the relay:
- full lookup (`scan(url, full_lookup=True)`): the relay sees the URL and may ask
  VirusTotal and OTX, within their rate limits, fairly across requesters, once
  per URL however many people ask at the same moment;
- prefix mode (`full_hashes_for(prefixes)`): the relay sees only 4-byte hash
  prefixes and answers from its blocklists and the bad verdicts it has cached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx
import msgspec

from securechat.scanner.blocklist import Blocklist
from securechat.scanner.cache import CacheTTL, MemoryVerdictCache, VerdictCache
from securechat.scanner.canonical import CanonicalURL, expressions, full_hash, parse_canonical
from securechat.scanner.canonical import url_key as _url_key
from securechat.scanner.errors import InvalidURL
from securechat.scanner.extract import extract_urls
from securechat.scanner.gate import ProviderGate, SingleFlight, Sleep
from securechat.scanner.heuristics import check
from securechat.scanner.prefix import HashMatch, PrefixIndex
from securechat.scanner.providers import OTXProvider, Provider, VirusTotalProvider
from securechat.scanner.ratelimit import Clock, Limiter, RateLimit
from securechat.scanner.verdict import (
    ProviderReport,
    ProviderStatus,
    Rating,
    Verdict,
    combine,
)

__all__ = ["Scanner"]

log = logging.getLogger(__name__)

#: After a provider itself answers 429, ask it nothing for this long.
QUOTA_PAUSE = 60.0


class Scanner:
    """Checks links; never raises for provider trouble, which shows in the verdict."""

    def __init__(
        self,
        *,
        providers: Sequence[Provider] = (),
        blocklist: Blocklist | None = None,
        cache: VerdictCache | None = None,
        limits: Mapping[str, Sequence[RateLimit]] | None = None,
        max_queue_wait: float = 30.0,
        ttl: CacheTTL | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.providers = list(providers)
        # `is None`, not `or`: an empty cache or blocklist is falsy (it has a length).
        self.blocklist = Blocklist((), clock=clock) if blocklist is None else blocklist
        self.cache: VerdictCache = MemoryVerdictCache(clock=clock) if cache is None else cache
        self.ttl = ttl or CacheTTL()
        self._clock = clock
        limits = limits or {}
        self.gates = {
            p.name: ProviderGate(
                Limiter(limits.get(p.name, p.default_limits), clock),
                max_wait=max_queue_wait,
                sleep=sleep,
            )
            for p in self.providers
        }
        self._flight: SingleFlight[tuple[bytes, bool], Verdict] = SingleFlight()
        self._seen_bad: dict[bytes, tuple[HashMatch, float]] = {}
        self._index: PrefixIndex | None = None
        self._index_key: tuple[int, int] = (-1, -1)
        self._bad_version = 0

    @classmethod
    def from_env(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        blocklist_paths: Iterable[str | os.PathLike[str]] = (),
        client: httpx.AsyncClient | None = None,
        provider_timeout: float = 10.0,
        **kwargs: Any,
    ) -> Scanner:
        """Providers keyed by VT_API_KEY / OTX_API_KEY (absent: disabled) plus blocklists."""
        providers: list[Provider] = [
            VirusTotalProvider.from_env(env, client=client, timeout=provider_timeout),
            OTXProvider.from_env(env, client=client, timeout=provider_timeout),
        ]
        clock = kwargs.get("clock", time.monotonic)
        return cls(providers=providers, blocklist=Blocklist(blocklist_paths, clock=clock), **kwargs)

    async def aclose(self) -> None:
        """Stop queued provider requests and close HTTP clients the providers own."""
        for gate in self.gates.values():
            await gate.aclose()
        for provider in self.providers:
            await provider.aclose()

    @staticmethod
    def extract_urls(text: str) -> list[str]:
        """Links in a chat message (see securechat.scanner.extract)."""
        return extract_urls(text)

    async def scan(
        self, url: str, *, requester: str, full_lookup: bool, submit: bool = False
    ) -> Verdict:
        """Check one link for `requester`; providers are asked only when `full_lookup`.

        `submit=True` lets VirusTotal analyse a URL it has never seen, which makes
        the URL visible to VirusTotal's community: only on the user's request.
        """
        findings = check(url)
        try:
            canon = parse_canonical(url)
        except InvalidURL:
            return combine(url.strip()[:200], (), findings)
        canonical = str(canon)
        reports = [self.blocklist.report(canon)]
        key = _url_key(canonical)
        found = await self.cache.get(key)
        if found is None and full_lookup and self.providers:
            found = await self._flight.do(
                (key, submit), lambda: self._ask_providers(key, canon, requester, submit)
            )
        if found is not None:
            reports.extend(found.providers)
        cached = found is not None and found.cached
        return combine(canonical, reports, findings, cached=cached)

    async def _ask_providers(
        self, key: bytes, canon: CanonicalURL, requester: str, submit: bool
    ) -> Verdict:
        found = await self.cache.get(key)  # filled while this caller was on its way
        if found is not None:
            return found
        canonical = str(canon)
        reports = await asyncio.gather(
            *(self._ask(p, canonical, requester, submit) for p in self.providers)
        )
        verdict = combine(canonical, reports)
        if any(p.enabled for p in self.providers):
            ttl = self.ttl.for_verdict(verdict)
            await self.cache.put(key, msgspec.structs.replace(verdict, cached=True), ttl)
            self._remember(canon, verdict, ttl)
        return verdict

    async def _ask(
        self, provider: Provider, url: str, requester: str, submit: bool
    ) -> ProviderReport:
        if not provider.enabled:
            return ProviderReport(provider.name, ProviderStatus.DISABLED, detail="no API key")
        gate = self.gates[provider.name]
        cost = provider.cost(submit=submit)
        if not await gate.acquire(requester, cost):
            wait = gate.limiter.retry_after(cost)
            return ProviderReport(
                provider.name,
                ProviderStatus.QUOTA_EXCEEDED,
                detail=f"rate limit {gate.limiter.describe()} reached here; "
                f"try again in {wait:.0f} s",
            )
        try:
            report = await provider.lookup(url, submit=submit)
        except Exception:  # a provider bug must not take the other answers down with it
            log.exception("%s lookup raised", provider.name)
            return ProviderReport(provider.name, ProviderStatus.ERROR, detail="internal error")
        if report.status is ProviderStatus.QUOTA_EXCEEDED:
            gate.limiter.pause(QUOTA_PAUSE)
        return report

    def _remember(self, canon: CanonicalURL, verdict: Verdict, ttl: float) -> None:
        if verdict.rating not in (Rating.MALICIOUS, Rating.SUSPICIOUS):
            return
        sources = [p.provider for p in verdict.providers if p.rating is verdict.rating]
        digest = full_hash(expressions(canon)[0])
        match = HashMatch(digest, verdict.rating, "+".join(sources))
        self._seen_bad[digest] = (match, self._clock() + ttl)
        self._bad_version += 1

    def prefix_index(self) -> PrefixIndex:
        """The relay's index for prefix mode: blocklists plus live bad verdicts."""
        self.blocklist.refresh()
        now = self._clock()
        expired = [d for d, (_, until) in self._seen_bad.items() if until <= now]
        for digest in expired:
            del self._seen_bad[digest]
        if expired:
            self._bad_version += 1
        key = (self.blocklist.version, self._bad_version)
        if self._index is None or key != self._index_key:
            index = PrefixIndex(match for match, _ in self._seen_bad.values())
            for digest, hit in self.blocklist.entries():
                index.add(digest, Rating.MALICIOUS, f"blocklist:{hit.source}")
            self._index, self._index_key = index, key
        return self._index

    def full_hashes_for(self, prefixes: Iterable[bytes]) -> list[HashMatch]:
        """Answer a prefix-mode request; the relay learns only the prefixes."""
        return self.prefix_index().full_hashes_for(prefixes)
