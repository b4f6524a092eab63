"""VirusTotal and OTX providers against local fake servers speaking their shapes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from securechat.scanner import OTXProvider, ProviderStatus, Rating, VirusTotalProvider
from securechat.scanner.providers.virustotal import url_id
from tests.scanner.fakes import OTX_KEY, VT_KEY, FakeOTX, FakeVirusTotal, Fault

BAD = "http://evil.example/login.php"
GOOD = "https://www.example.com/"
TIMEOUT = 0.3


@pytest.fixture
async def vt(fake_vt: FakeVirusTotal) -> AsyncIterator[VirusTotalProvider]:
    fake_vt.slow_seconds = TIMEOUT * 4
    provider = VirusTotalProvider(VT_KEY, base_url=fake_vt.base_url, timeout=TIMEOUT)
    yield provider
    await provider.aclose()


@pytest.fixture
async def otx(fake_otx: FakeOTX) -> AsyncIterator[OTXProvider]:
    fake_otx.slow_seconds = TIMEOUT * 4
    provider = OTXProvider(OTX_KEY, base_url=fake_otx.base_url, timeout=TIMEOUT)
    yield provider
    await provider.aclose()


def test_url_id_is_unpadded_urlsafe_base64() -> None:
    """VirusTotal addresses URL reports by base64url of the URL without '=' padding."""
    assert url_id("http://example.com/") == "aHR0cDovL2V4YW1wbGUuY29tLw"


async def test_vt_known_malicious(fake_vt: FakeVirusTotal, vt: VirusTotalProvider) -> None:
    """Enough engines flagging a URL make VirusTotal's rating malicious, with the counts."""
    fake_vt.add(BAD, malicious=12, suspicious=1, harmless=50)
    report = await vt.lookup(BAD)
    assert (report.status, report.rating) == (ProviderStatus.OK, Rating.MALICIOUS)
    assert report.stats["malicious"] == 12
    assert fake_vt.requests[0].headers["x-apikey"] == VT_KEY


async def test_vt_single_engine_is_only_suspicious(
    fake_vt: FakeVirusTotal, vt: VirusTotalProvider
) -> None:
    """One engine alone is often a false positive, so it rates suspicious, not malicious."""
    fake_vt.add(BAD, malicious=1)
    assert (await vt.lookup(BAD)).rating is Rating.SUSPICIOUS


async def test_vt_known_clean(fake_vt: FakeVirusTotal, vt: VirusTotalProvider) -> None:
    """Engines that scanned and found nothing give a positive clean answer."""
    fake_vt.add(GOOD)
    report = await vt.lookup(GOOD)
    assert (report.status, report.rating) == (ProviderStatus.OK, Rating.SAFE)


async def test_vt_unknown_is_not_found_and_not_submitted(
    fake_vt: FakeVirusTotal, vt: VirusTotalProvider
) -> None:
    """A URL VirusTotal never saw is reported not_found and NOT submitted unless asked."""
    report = await vt.lookup(GOOD)
    assert report.status is ProviderStatus.NOT_FOUND and report.rating is None
    assert fake_vt.submitted == []
    assert [r.method for r in fake_vt.requests] == ["GET"]


async def test_vt_submits_only_when_asked(fake_vt: FakeVirusTotal, vt: VirusTotalProvider) -> None:
    """submit=True posts the unknown URL and returns the analysis id to poll."""
    report = await vt.lookup(GOOD, submit=True)
    assert fake_vt.submitted == [GOOD]
    assert report.status is ProviderStatus.NOT_FOUND
    assert report.analysis_id is not None and report.analysis_id.startswith("u-")


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.UNAUTHORIZED, ProviderStatus.UNAUTHORIZED),
        (Fault.QUOTA, ProviderStatus.QUOTA_EXCEEDED),
        (Fault.SERVER_ERROR, ProviderStatus.ERROR),
        (Fault.SLOW, ProviderStatus.TIMEOUT),
        (Fault.MALFORMED, ProviderStatus.ERROR),
    ],
)
async def test_vt_faults(
    fake_vt: FakeVirusTotal, vt: VirusTotalProvider, fault: Fault, status: ProviderStatus
) -> None:
    """Each way VirusTotal can fail maps to its own status and never to a rating."""
    fake_vt.add(GOOD)
    fake_vt.fault = fault
    report = await vt.lookup(GOOD)
    assert (report.status, report.rating) == (status, None)


async def test_vt_wrong_key(fake_vt: FakeVirusTotal) -> None:
    """A key the service rejects (401) reads as unauthorized, and is never logged."""
    provider = VirusTotalProvider("wrong-key-xyz", base_url=fake_vt.base_url, timeout=TIMEOUT)
    report = await provider.lookup(GOOD)
    await provider.aclose()
    assert report.status is ProviderStatus.UNAUTHORIZED
    assert "wrong-key-xyz" not in repr(provider) + report.detail


async def test_vt_without_key_is_disabled(fake_vt: FakeVirusTotal) -> None:
    """No key: the provider says disabled and sends nothing."""
    provider = VirusTotalProvider.from_env({}, base_url=fake_vt.base_url)
    report = await provider.lookup(GOOD)
    await provider.aclose()
    assert report.status is ProviderStatus.DISABLED
    assert fake_vt.requests == []


async def test_key_stays_out_of_logs_and_urls(
    fake_vt: FakeVirusTotal, vt: VirusTotalProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """The API key travels only in its header: not in the path, not in any log line."""
    caplog.set_level(logging.DEBUG)
    fake_vt.fault = Fault.MALFORMED
    await vt.lookup(GOOD)
    assert VT_KEY not in fake_vt.requests[0].target
    assert VT_KEY not in caplog.text


async def test_otx_url_pulses_are_malicious(fake_otx: FakeOTX, otx: OTXProvider) -> None:
    """Pulses naming the URL itself rate it malicious and carry the pulse names."""
    fake_otx.urls[BAD] = ["Phishing campaign 2024", "Credential harvesting"]
    report = await otx.lookup(BAD)
    assert (report.status, report.rating) == (ProviderStatus.OK, Rating.MALICIOUS)
    assert report.pulses == ("Phishing campaign 2024", "Credential harvesting")
    assert {r.headers["x-otx-api-key"] for r in fake_otx.requests} == {OTX_KEY}
    assert {r.target.split("/")[4] for r in fake_otx.requests} == {"url", "hostname"}


async def test_otx_host_pulses_are_suspicious(fake_otx: FakeOTX, otx: OTXProvider) -> None:
    """Pulses naming only the host make the URL suspicious, not proven bad."""
    fake_otx.hosts["evil.example"] = ["Bulletproof hosting"]
    report = await otx.lookup(BAD)
    assert (report.status, report.rating) == (ProviderStatus.OK, Rating.SUSPICIOUS)


async def test_otx_allow_list_is_clean(fake_otx: FakeOTX, otx: OTXProvider) -> None:
    """A host on OTX's allow list with no pulses is a positive clean answer."""
    fake_otx.allowed.add("www.example.com")
    report = await otx.lookup(GOOD)
    assert (report.status, report.rating) == (ProviderStatus.OK, Rating.SAFE)


async def test_otx_unknown(fake_otx: FakeOTX, otx: OTXProvider) -> None:
    """OTX never having seen the URL or host is not_found, with no opinion."""
    report = await otx.lookup(GOOD)
    assert (report.status, report.rating) == (ProviderStatus.NOT_FOUND, None)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.UNAUTHORIZED, ProviderStatus.UNAUTHORIZED),
        (Fault.QUOTA, ProviderStatus.QUOTA_EXCEEDED),
        (Fault.SERVER_ERROR, ProviderStatus.ERROR),
        (Fault.SLOW, ProviderStatus.TIMEOUT),
        (Fault.MALFORMED, ProviderStatus.ERROR),
    ],
)
async def test_otx_faults(
    fake_otx: FakeOTX, otx: OTXProvider, fault: Fault, status: ProviderStatus
) -> None:
    """Each way OTX can fail maps to its own status and never to a rating."""
    fake_otx.urls[GOOD] = []
    fake_otx.fault = fault
    report = await otx.lookup(GOOD)
    assert (report.status, report.rating) == (status, None)
