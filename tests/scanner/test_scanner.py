"""The Scanner façade against fake VirusTotal and OTX servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from securechat.scanner import (
    Blocklist,
    CacheTTL,
    MemoryVerdictCache,
    OTXProvider,
    ProviderStatus,
    RateLimit,
    Rating,
    Scanner,
    VirusTotalProvider,
    decide_from_hashes,
    prefixes_for,
)
from tests.scanner.fakes import OTX_KEY, VT_KEY, FakeClock, FakeOTX, FakeVirusTotal, Fault

BAD = "http://evil.example/login.php"
GOOD = "https://www.example.com/"
TIMEOUT = 0.3

MakeScanner = Callable[..., Scanner]


@pytest.fixture
async def make_scanner(fake_vt: FakeVirusTotal, fake_otx: FakeOTX) -> AsyncIterator[MakeScanner]:
    """Build scanners wired to the fakes; all are closed after the test."""
    fake_vt.slow_seconds = fake_otx.slow_seconds = TIMEOUT * 4
    made: list[Scanner] = []

    def make(*, timeout: float = TIMEOUT, **kwargs: Any) -> Scanner:
        providers = [
            VirusTotalProvider(VT_KEY, base_url=fake_vt.base_url, timeout=timeout),
            OTXProvider(OTX_KEY, base_url=fake_otx.base_url, timeout=timeout),
        ]
        scanner = Scanner(providers=providers, **kwargs)
        made.append(scanner)
        return scanner

    yield make
    for scanner in made:
        await scanner.aclose()


async def test_full_lookup_combines_providers(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX
) -> None:
    """Both providers answer and their ratings reach the verdict with reasons."""
    fake_vt.add(BAD, malicious=9)
    fake_otx.urls[BAD] = ["Phishing kit"]
    verdict = await make_scanner().scan(BAD, requester="alice", full_lookup=True)
    assert verdict.rating is Rating.MALICIOUS
    assert {p.provider: p.status for p in verdict.providers} == {
        "blocklist": ProviderStatus.DISABLED,
        "virustotal": ProviderStatus.OK,
        "otx": ProviderStatus.OK,
    }
    assert any(r.startswith("virustotal: malicious") for r in verdict.reasons)


async def test_clean_url_is_safe(make_scanner: MakeScanner, fake_vt: FakeVirusTotal) -> None:
    """A positive clean answer and no heuristic make a URL safe."""
    fake_vt.add(GOOD)
    verdict = await make_scanner().scan(GOOD, requester="alice", full_lookup=True)
    assert verdict.rating is Rating.SAFE


async def test_without_full_lookup_no_provider_is_asked(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX
) -> None:
    """Default scans stay local: heuristics and blocklists only."""
    verdict = await make_scanner().scan("https://bit.ly/x", requester="a", full_lookup=False)
    assert verdict.rating is Rating.SUSPICIOUS
    assert fake_vt.requests == [] and fake_otx.requests == []


async def test_one_provider_down_others_answer(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX
) -> None:
    """A slow VirusTotal is reported as a timeout while OTX's answer still counts."""
    fake_vt.fault = Fault.SLOW
    fake_otx.urls[BAD] = ["Phishing kit"]
    verdict = await make_scanner().scan(BAD, requester="alice", full_lookup=True)
    assert verdict.provider("virustotal").status is ProviderStatus.TIMEOUT  # type: ignore[union-attr]
    assert verdict.rating is Rating.MALICIOUS


@pytest.mark.parametrize("fault", list(Fault))
async def test_failures_never_read_safe(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX, fault: Fault
) -> None:
    """Whatever goes wrong with both providers, a URL is never called safe."""
    fake_vt.add(GOOD)
    fake_otx.allowed.add("www.example.com")
    fake_vt.fault = fake_otx.fault = fault
    verdict = await make_scanner().scan(GOOD, requester="alice", full_lookup=True)
    assert verdict.rating is Rating.UNKNOWN


async def test_no_keys_still_works(tmp_path: Path) -> None:
    """Without API keys, providers say disabled and heuristics + blocklists still decide."""
    listed = tmp_path / "list.txt"
    listed.write_text("evil.example\n")
    scanner = Scanner.from_env(env={}, blocklist_paths=[listed])
    try:
        bad = await scanner.scan(BAD, requester="a", full_lookup=True)
        good = await scanner.scan(GOOD, requester="a", full_lookup=True)
    finally:
        await scanner.aclose()
    assert bad.rating is Rating.MALICIOUS
    assert good.rating is Rating.UNKNOWN
    assert {p.provider: p.status for p in good.providers if p.provider != "blocklist"} == {
        "virustotal": ProviderStatus.DISABLED,
        "otx": ProviderStatus.DISABLED,
    }


async def test_cached_verdict_makes_no_provider_call(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX
) -> None:
    """A second scan within the TTL is answered from the cache, not the providers."""
    fake_vt.add(GOOD)
    scanner = make_scanner()
    first = await scanner.scan(GOOD, requester="alice", full_lookup=True)
    calls = len(fake_vt.requests), len(fake_otx.requests)
    second = await scanner.scan(GOOD, requester="bob", full_lookup=True)
    assert (len(fake_vt.requests), len(fake_otx.requests)) == calls == (1, 2)
    assert (first.cached, second.cached) == (False, True)
    assert second.rating is first.rating is Rating.SAFE


async def test_cache_expires(make_scanner: MakeScanner, fake_vt: FakeVirusTotal) -> None:
    """After the TTL the providers are asked again."""
    clock = FakeClock()
    fake_vt.add(GOOD)
    scanner = make_scanner(clock=clock, ttl=CacheTTL(safe=60.0))
    await scanner.scan(GOOD, requester="a", full_lookup=True)
    clock.advance(61.0)
    await scanner.scan(GOOD, requester="a", full_lookup=True)
    assert len(fake_vt.requests) == 2


async def test_single_flight(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, fake_otx: FakeOTX
) -> None:
    """Twenty people asking about one URL at once cause one request per provider lookup."""
    fake_vt.add(BAD, malicious=5)
    fake_vt.delay = fake_otx.delay = 0.05
    scanner = make_scanner()
    verdicts = await asyncio.gather(
        *(scanner.scan(BAD, requester=f"user{i}", full_lookup=True) for i in range(20))
    )
    assert {v.rating for v in verdicts} == {Rating.MALICIOUS}
    assert len(fake_vt.requests) == 1
    assert len(fake_otx.requests) == 2  # one lookup: the URL and its host


async def test_burst_of_100_holds_the_free_tier(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal
) -> None:
    """100 distinct URLs in a burst: 4 reach VirusTotal, the rest say quota_exceeded."""
    clock = FakeClock()
    # OTX answers all 100 (200 requests): a roomy timeout keeps loopback load from mattering.
    scanner = make_scanner(clock=clock, sleep=clock.sleep, max_queue_wait=30.0, timeout=10.0)
    urls = [f"https://site{i}.example.com/page" for i in range(100)]
    verdicts = await asyncio.gather(
        *(scanner.scan(u, requester=f"user{i % 7}", full_lookup=True) for i, u in enumerate(urls))
    )
    statuses = [v.provider("virustotal").status for v in verdicts]  # type: ignore[union-attr]
    assert len(fake_vt.requests) == 4
    assert statuses.count(ProviderStatus.NOT_FOUND) == 4
    assert statuses.count(ProviderStatus.QUOTA_EXCEEDED) == 96
    assert clock() - 1000.0 < 60.0, "the fake clock never reached the second minute"
    limited = verdicts[statuses.index(ProviderStatus.QUOTA_EXCEEDED)]
    assert any("virustotal: quota_exceeded" in r and "4/minute" in r for r in limited.reasons)
    assert limited.rating is not Rating.SAFE


async def test_queue_waits_for_the_next_minute(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal
) -> None:
    """With a long enough queue wait, the 5th lookup goes out when the minute rolls over."""
    clock = FakeClock()
    scanner = make_scanner(clock=clock, sleep=clock.sleep, max_queue_wait=120.0)
    urls = [f"https://site{i}.example.com/" for i in range(6)]
    await asyncio.gather(*(scanner.scan(u, requester="a", full_lookup=True) for u in urls))
    assert len(fake_vt.requests) == 6
    assert clock() - 1000.0 >= 60.0


async def test_remote_429_pauses_the_provider(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal
) -> None:
    """After VirusTotal says 429 we stop asking it for a while instead of hammering it."""
    fake_vt.fault = Fault.QUOTA
    scanner = make_scanner(max_queue_wait=0.0)
    await scanner.scan("https://a.example.com/", requester="a", full_lookup=True)
    second = await scanner.scan("https://b.example.com/", requester="a", full_lookup=True)
    assert len(fake_vt.requests) == 1
    assert second.provider("virustotal").status is ProviderStatus.QUOTA_EXCEEDED  # type: ignore[union-attr]


async def test_custom_limits(make_scanner: MakeScanner, fake_otx: FakeOTX) -> None:
    """Rates are configurable per provider name (OTX counts its two requests a lookup)."""
    scanner = make_scanner(limits={"otx": [RateLimit(2, 3600.0)]}, max_queue_wait=0.0)
    first = await scanner.scan("https://a.example.com/", requester="a", full_lookup=True)
    second = await scanner.scan("https://b.example.com/", requester="a", full_lookup=True)
    assert first.provider("otx").status is ProviderStatus.NOT_FOUND  # type: ignore[union-attr]
    assert second.provider("otx").status is ProviderStatus.QUOTA_EXCEEDED  # type: ignore[union-attr]


async def test_submit_passes_through(make_scanner: MakeScanner, fake_vt: FakeVirusTotal) -> None:
    """submit=True reaches VirusTotal; without it nothing is ever submitted."""
    scanner = make_scanner()
    await scanner.scan(GOOD, requester="a", full_lookup=True)
    assert fake_vt.submitted == []
    verdict = await scanner.scan(
        "https://new.example.com/", requester="a", full_lookup=True, submit=True
    )
    assert fake_vt.submitted == ["https://new.example.com/"]
    assert verdict.provider("virustotal").analysis_id  # type: ignore[union-attr]


async def test_cache_is_keyed_by_canonical_url(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal
) -> None:
    """Spelling variants of one URL share a cache entry (and one provider lookup)."""
    fake_vt.add(GOOD)
    cache = MemoryVerdictCache()
    scanner = make_scanner(cache=cache)
    for spelling in (GOOD, "https://WWW.Example.com/#top", "https://www.example.com/./"):
        await scanner.scan(spelling, requester="a", full_lookup=True)
    assert len(fake_vt.requests) == 1
    assert len(cache) == 1


async def test_bad_verdicts_feed_the_prefix_index(
    make_scanner: MakeScanner, fake_vt: FakeVirusTotal, tmp_path: Path
) -> None:
    """URLs found bad in full mode protect prefix-mode users too; blocklists are served."""
    fake_vt.add(BAD, malicious=7)
    listed = tmp_path / "urlhaus.txt"
    listed.write_text("http://198.51.100.7/bins/mozi.m\n")
    scanner = make_scanner(blocklist=Blocklist([listed]))
    await scanner.scan(BAD, requester="alice", full_lookup=True)
    for url in (BAD, "http://198.51.100.7/bins/mozi.m"):
        answers = scanner.full_hashes_for(prefixes_for(url))
        assert decide_from_hashes(url, answers).rating is Rating.MALICIOUS
    answers = scanner.full_hashes_for(prefixes_for(GOOD))
    assert decide_from_hashes(GOOD, answers).rating is Rating.UNKNOWN


async def test_script_links_are_suspicious_without_lookup(make_scanner: MakeScanner) -> None:
    """javascript: links cannot be looked up but are flagged at once."""
    verdict = await make_scanner().scan("javascript:alert(1)", requester="a", full_lookup=True)
    assert verdict.rating is Rating.SUSPICIOUS
    assert verdict.providers == ()
