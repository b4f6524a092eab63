"""AlienVault OTX DirectConnect v1: pulses that mention the URL or its host."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from securechat.scanner.canonical import parse_ipv4
from securechat.scanner.providers.base import HttpProvider, ProviderFailure
from securechat.scanner.ratelimit import OTX_FREE_TIER
from securechat.scanner.verdict import ProviderReport, ProviderStatus, Rating

__all__ = ["OTXProvider"]


class _Pulse(msgspec.Struct):
    name: str = ""


class _PulseInfo(msgspec.Struct):
    count: int = 0
    pulses: list[_Pulse] = []


class _General(msgspec.Struct):
    pulse_info: _PulseInfo
    validation: list[Any] = []


class OTXProvider(HttpProvider):
    """Pulses naming the URL rate it malicious; pulses naming only its host, suspicious.

    An indicator on OTX's allow list (`validation`) with no pulses rates safe; an
    indicator OTX knows but no pulse mentions carries no opinion.
    """

    name = "otx"
    default_base_url = "https://otx.alienvault.com/api/v1"
    key_header = "X-OTX-API-KEY"
    key_env = "OTX_API_KEY"
    default_limits = OTX_FREE_TIER

    def cost(self, *, submit: bool) -> int:
        return 2

    async def _general(self, path: str) -> _General | None:
        response = await self.request("GET", path)
        failure = self.failure_for(response)
        if failure is not None and failure.status is ProviderStatus.NOT_FOUND:
            return None
        if failure is not None:
            raise ProviderFailure(failure)
        return self.decode(response, _General)

    async def _lookup(self, url: str, *, submit: bool) -> ProviderReport:
        host = urlsplit(url).hostname or ""
        paths = [f"/indicators/url/{quote(url, safe='')}/general"]
        if host and parse_ipv4(host) is None and not host.startswith("["):
            paths.append(f"/indicators/hostname/{quote(host, safe='')}/general")
        answers: list[_General | None] = list(
            await asyncio.gather(*(self._general(path) for path in paths))
        )
        url_answer = answers[0]
        host_answer = answers[1] if len(answers) > 1 else None
        if url_answer is None and host_answer is None:
            return self.report(ProviderStatus.NOT_FOUND, "has no record of this URL or host")
        url_pulses = url_answer.pulse_info if url_answer else _PulseInfo()
        host_pulses = host_answer.pulse_info if host_answer else _PulseInfo()
        names = tuple(p.name for p in (*url_pulses.pulses, *host_pulses.pulses) if p.name)
        count = url_pulses.count + host_pulses.count
        allowed = any(a is not None and a.validation for a in answers)
        if url_pulses.count:
            rating: Rating | None = Rating.MALICIOUS
            detail = f"{url_pulses.count} threat pulse(s) name this URL"
        elif host_pulses.count:
            rating = Rating.SUSPICIOUS
            detail = f"{host_pulses.count} threat pulse(s) name its host"
        elif allowed:
            rating = Rating.SAFE
            detail = "on OTX's allow list, no threat pulses"
        else:
            rating = None
            detail = "known, but no threat pulse mentions it"
        return self.report(
            ProviderStatus.OK, detail, rating=rating, pulses=names, pulse_count=count
        )
