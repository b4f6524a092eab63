"""The provider interface and the shared httpx plumbing.

A provider never raises for a failed lookup: bad keys, quotas, outages, slow
answers and malformed bodies all come back as a ProviderReport whose status
says which, so the scanner can still combine what the other sources said.
API keys travel only in request headers; they are never logged or repr'd.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self, TypeVar

import httpx
import msgspec

from securechat.scanner.ratelimit import RateLimit
from securechat.scanner.verdict import ProviderReport, ProviderStatus

__all__ = ["HttpProvider", "Provider", "ProviderFailure"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Provider(Protocol):
    """What the scanner needs from an online source."""

    @property
    def name(self) -> str:
        """Stable provider name used in reports and rate-limit configuration."""
        ...

    @property
    def default_limits(self) -> tuple[RateLimit, ...]:
        """The limits used when the scanner is not configured otherwise."""
        ...

    @property
    def enabled(self) -> bool:
        """False when the provider cannot be asked (no API key)."""
        ...

    def cost(self, *, submit: bool) -> int:
        """HTTP requests one lookup may make, charged to the rate limit up front."""
        ...

    async def lookup(self, url: str, *, submit: bool = False) -> ProviderReport:
        """Ask about one canonical URL; never raises for provider failures."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client if the provider created it."""
        ...


class ProviderFailure(Exception):
    """Internal: stops a lookup early with the report to return."""

    def __init__(self, report: ProviderReport) -> None:
        super().__init__(report.detail)
        self.report = report


class HttpProvider:
    """Shared plumbing: key handling, timeouts, status mapping, typed JSON decoding."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    key_header: ClassVar[str]
    key_env: ClassVar[str]
    default_limits: ClassVar[tuple[RateLimit, ...]] = ()

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """Build with the key from the environment variable `key_env` (absent: disabled)."""
        source = os.environ if env is None else env
        return cls(source.get(cls.key_env), **kwargs)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, key={key})"

    @property
    def enabled(self) -> bool:
        return self._api_key is not None

    def cost(self, *, submit: bool) -> int:
        return 1

    def report(self, status: ProviderStatus, detail: str, **fields: Any) -> ProviderReport:
        """A report from this provider."""
        return ProviderReport(provider=self.name, status=status, detail=detail, **fields)

    async def lookup(self, url: str, *, submit: bool = False) -> ProviderReport:
        if self._api_key is None:
            return self.report(ProviderStatus.DISABLED, f"no API key ({self.key_env} is not set)")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._lookup(url, submit=submit)
        except ProviderFailure as failure:
            return failure.report
        except (TimeoutError, httpx.TimeoutException):
            return self.report(ProviderStatus.TIMEOUT, f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            log.warning("%s request failed: %s", self.name, type(exc).__name__)
            return self.report(ProviderStatus.ERROR, f"could not reach it ({type(exc).__name__})")

    async def _lookup(self, url: str, *, submit: bool) -> ProviderReport:
        raise NotImplementedError

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request; the key goes in a header, never in the URL."""
        assert self._api_key is not None
        headers = {self.key_header: self._api_key, "Accept": "application/json"}
        return await self._client.request(method, self.base_url + path, headers=headers, **kwargs)

    def failure_for(self, response: httpx.Response) -> ProviderReport | None:
        """The report for a non-success answer (None for 2xx)."""
        code = response.status_code
        if code < 300:
            return None
        if code in (401, 403):
            status, detail = ProviderStatus.UNAUTHORIZED, "the API key was rejected"
        elif code == 404:
            status, detail = ProviderStatus.NOT_FOUND, "has no record of this URL"
        elif code == 429:
            status, detail = ProviderStatus.QUOTA_EXCEEDED, "the provider's quota is used up"
        else:
            status, detail = ProviderStatus.ERROR, f"answered HTTP {code}"
        return self.report(status, detail)

    def decode(self, response: httpx.Response, shape: type[T]) -> T:
        """Decode a JSON body into `shape`; a malformed body stops the lookup as an error."""
        try:
            return msgspec.json.decode(response.content, type=shape)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("%s sent a malformed answer: %s", self.name, exc)
            raise ProviderFailure(
                self.report(ProviderStatus.ERROR, "sent an answer that could not be read")
            ) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
