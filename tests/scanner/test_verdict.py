"""The combination rule: what each mix of answers adds up to."""

from __future__ import annotations

import pytest

from securechat.scanner import (
    Finding,
    ProviderReport,
    ProviderStatus,
    Rating,
    combine,
    decode_verdict,
    encode_verdict,
)

OK = ProviderStatus.OK
URL = "http://example.com/"


def said(rating: Rating | None, status: ProviderStatus = OK, name: str = "p") -> ProviderReport:
    return ProviderReport(name, status, rating=rating, detail="x")


FINDING = Finding("shortener", "hides the destination")


@pytest.mark.parametrize(
    ("reports", "findings", "expected"),
    [
        ([said(Rating.MALICIOUS), said(Rating.SAFE)], [], Rating.MALICIOUS),
        ([said(Rating.SAFE)], [FINDING], Rating.SUSPICIOUS),
        ([said(Rating.SUSPICIOUS), said(Rating.SAFE)], [], Rating.SUSPICIOUS),
        ([said(Rating.SAFE)], [], Rating.SAFE),
        ([said(Rating.SAFE), said(None, ProviderStatus.TIMEOUT)], [], Rating.SAFE),
        ([said(None)], [], Rating.UNKNOWN),
        ([], [], Rating.UNKNOWN),
        ([said(None, ProviderStatus.NOT_FOUND)], [], Rating.UNKNOWN),
    ],
)
def test_combination_rule(
    reports: list[ProviderReport], findings: list[Finding], expected: Rating
) -> None:
    """Malicious beats suspicious beats safe; safe needs a positive clean answer."""
    assert combine(URL, reports, findings).rating is expected


@pytest.mark.parametrize("status", [s for s in ProviderStatus if s is not OK])
def test_failure_never_reads_as_safe(status: ProviderStatus) -> None:
    """A failed provider cannot vouch for a URL even if it somehow carries a safe rating."""
    verdict = combine(URL, [said(Rating.SAFE, status)])
    assert verdict.rating is Rating.UNKNOWN


def test_failures_are_explained() -> None:
    """The reasons name the provider and what went wrong, so the UI can say it."""
    verdict = combine(URL, [said(None, ProviderStatus.QUOTA_EXCEEDED, "virustotal")])
    assert any(r.startswith("virustotal: quota_exceeded") for r in verdict.reasons)


def test_verdict_round_trips_as_json() -> None:
    """A server-store cache keeps verdicts as bytes; nothing may be lost on the way."""
    verdict = combine(URL, [said(Rating.SAFE, name="virustotal")], [FINDING])
    assert decode_verdict(encode_verdict(verdict)) == verdict
