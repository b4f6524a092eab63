"""Verdicts, provider reports, and the one rule that combines them.

The combination rule (documented in docs/scanner.md):

1. any source rating the URL malicious          -> malicious
2. else any source rating it suspicious, or any
   heuristic finding                             -> suspicious
3. else at least one source that answered (status ok) and rated it
   safe                                          -> safe
4. otherwise                                     -> unknown

Only a report with status `ok` can carry a rating, so a failed provider (bad
key, quota, outage, timeout) can never make a URL read as safe.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

__all__ = [
    "Finding",
    "ProviderReport",
    "ProviderStatus",
    "Rating",
    "Verdict",
    "combine",
    "decode_verdict",
    "encode_verdict",
]


class Rating(StrEnum):
    """What a source or the combined verdict says about a URL."""

    SAFE = "safe"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    UNKNOWN = "unknown"


class ProviderStatus(StrEnum):
    """How a provider's answer went, independent of what it said."""

    OK = "ok"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    QUOTA_EXCEEDED = "quota_exceeded"
    ERROR = "error"
    TIMEOUT = "timeout"
    DISABLED = "disabled"


#: Statuses that say the provider could not answer right now (worth retrying soon).
TRANSIENT_FAILURES = frozenset(
    {ProviderStatus.QUOTA_EXCEEDED, ProviderStatus.ERROR, ProviderStatus.TIMEOUT}
)


#: Statuses not worth a reason: a plain answer, or a source switched off on purpose.
_QUIET = frozenset({ProviderStatus.OK, ProviderStatus.NOT_FOUND, ProviderStatus.DISABLED})


class Finding(msgspec.Struct, frozen=True):
    """One heuristic that fired; `code` is stable, `message` is for people."""

    code: str
    message: str


class ProviderReport(msgspec.Struct, frozen=True):
    """What one source (VirusTotal, OTX, a blocklist, the relay's prefix index) said.

    `rating` is None when the source answered but holds no opinion (for example
    OTX knows the URL but no pulse mentions it).
    """

    provider: str
    status: ProviderStatus
    rating: Rating | None = None
    detail: str = ""
    stats: dict[str, int] = {}
    pulses: tuple[str, ...] = ()
    pulse_count: int = 0
    analysis_id: str | None = None


class Verdict(msgspec.Struct, frozen=True):
    """The combined answer for one canonical URL."""

    url: str
    rating: Rating
    reasons: tuple[str, ...] = ()
    providers: tuple[ProviderReport, ...] = ()
    findings: tuple[Finding, ...] = ()
    cached: bool = False

    def provider(self, name: str) -> ProviderReport | None:
        """The report of the named provider, if it took part."""
        return next((p for p in self.providers if p.provider == name), None)


def combine(
    url: str,
    reports: tuple[ProviderReport, ...] | list[ProviderReport],
    findings: tuple[Finding, ...] | list[Finding] = (),
    *,
    cached: bool = False,
) -> Verdict:
    """Apply the combination rule in this module's docstring."""
    reports = tuple(reports)
    findings = tuple(findings)
    ratings = {r.rating for r in reports if r.status is ProviderStatus.OK and r.rating}
    if Rating.MALICIOUS in ratings:
        rating = Rating.MALICIOUS
    elif Rating.SUSPICIOUS in ratings or findings:
        rating = Rating.SUSPICIOUS
    elif Rating.SAFE in ratings:
        rating = Rating.SAFE
    else:
        rating = Rating.UNKNOWN
    reasons: list[str] = []
    for report in reports:
        if report.status is ProviderStatus.OK and report.rating in (
            Rating.MALICIOUS,
            Rating.SUSPICIOUS,
        ):
            reasons.append(f"{report.provider}: {report.rating} ({report.detail})")
        elif report.status not in _QUIET:
            reasons.append(f"{report.provider}: {report.status} ({report.detail})")
    reasons.extend(f.message for f in findings)
    if rating is Rating.SAFE:
        clean = [r.provider for r in reports if r.rating is Rating.SAFE]
        reasons.append("rated clean by " + ", ".join(clean))
    elif rating is Rating.UNKNOWN:
        reasons.append("no source could vouch for this link")
    return Verdict(
        url=url,
        rating=rating,
        reasons=tuple(reasons),
        providers=reports,
        findings=findings,
        cached=cached,
    )


def encode_verdict(verdict: Verdict) -> bytes:
    """JSON bytes for a store or the wire (explicit, never pickle)."""
    return msgspec.json.encode(verdict)


def decode_verdict(data: bytes) -> Verdict:
    """Inverse of encode_verdict; raises msgspec.ValidationError on bad input."""
    return msgspec.json.decode(data, type=Verdict)
