"""VirusTotal API v3: URL reports by URL id, and submission only when asked."""

from __future__ import annotations

import base64

import msgspec

from securechat.scanner.providers.base import HttpProvider, ProviderFailure
from securechat.scanner.ratelimit import VIRUSTOTAL_FREE_TIER
from securechat.scanner.verdict import ProviderReport, ProviderStatus, Rating

__all__ = ["VirusTotalProvider", "url_id"]


class _Stats(msgspec.Struct):
    harmless: int = 0
    malicious: int = 0
    suspicious: int = 0
    undetected: int = 0
    timeout: int = 0


class _Attributes(msgspec.Struct):
    last_analysis_stats: _Stats


class _Data(msgspec.Struct):
    attributes: _Attributes


class _UrlReport(msgspec.Struct):
    data: _Data


class _AnalysisRef(msgspec.Struct):
    id: str


class _Submitted(msgspec.Struct):
    data: _AnalysisRef


def url_id(url: str) -> str:
    """VirusTotal's URL identifier: URL-safe base64 of the URL without '=' padding."""
    return base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


class VirusTotalProvider(HttpProvider):
    """Reads `last_analysis_stats`; `malicious_threshold` engines make it malicious.

    Fewer malicious engines, or any suspicious one, rate the URL suspicious;
    otherwise engines that scanned it (harmless or undetected) rate it safe.
    """

    name = "virustotal"
    default_base_url = "https://www.virustotal.com/api/v3"
    key_header = "x-apikey"
    key_env = "VT_API_KEY"
    default_limits = VIRUSTOTAL_FREE_TIER
    malicious_threshold = 2

    def cost(self, *, submit: bool) -> int:
        return 2 if submit else 1

    async def _lookup(self, url: str, *, submit: bool) -> ProviderReport:
        response = await self.request("GET", f"/urls/{url_id(url)}")
        failure = self.failure_for(response)
        if failure is not None and failure.status is ProviderStatus.NOT_FOUND and submit:
            return await self._submit(url)
        if failure is not None:
            raise ProviderFailure(failure)
        stats = self.decode(response, _UrlReport).data.attributes.last_analysis_stats
        counts = msgspec.structs.asdict(stats)
        summary = (
            f"{stats.malicious} malicious, {stats.suspicious} suspicious, "
            f"{stats.harmless} harmless, {stats.undetected} undetected"
        )
        if stats.malicious >= self.malicious_threshold:
            rating: Rating | None = Rating.MALICIOUS
        elif stats.malicious or stats.suspicious:
            rating = Rating.SUSPICIOUS
        elif stats.harmless or stats.undetected:
            rating = Rating.SAFE
        else:
            rating = None
        return self.report(ProviderStatus.OK, summary, rating=rating, stats=counts)

    async def _submit(self, url: str) -> ProviderReport:
        response = await self.request("POST", "/urls", data={"url": url})
        failure = self.failure_for(response)
        if failure is not None:
            raise ProviderFailure(failure)
        analysis = self.decode(response, _Submitted).data.id
        return self.report(
            ProviderStatus.NOT_FOUND,
            "had not seen this URL; submitted it for analysis, ask again in a minute",
            analysis_id=analysis,
        )
