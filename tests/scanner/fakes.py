"""Local fake VirusTotal and OTX servers: real HTTP/1.1 on 127.0.0.1, no internet.

Each fake answers in the provider's documented shapes (see
/work/shared/reference/url-scanning-apis.md) and counts every request, so tests
can assert how many lookups reached the "provider". A test picks the behaviour
by setting `fault` (401, 429, 500, timeout, malformed) or by filling `known`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qs, unquote

import pytest

VT_KEY = "vt-test-key-0123456789"
OTX_KEY = "otx-test-key-9876543210"


class Fault(Enum):
    """A way for a fake provider to misbehave."""

    UNAUTHORIZED = "unauthorized"
    QUOTA = "quota"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    MALFORMED = "malformed"


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What the fake sends back."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, value: object) -> Reply:
        return cls(status, json.dumps(value).encode())


_REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip


@dataclass
class FakeHTTPServer:
    """A minimal asyncio HTTP/1.1 server: one request per connection, then close."""

    handler: Callable[[Request], Reply]
    slow_seconds: float = 2.0
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    delay: float = 0.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await self._read(reader)
            if request is None:
                return
            self.requests.append(request)
            reply = self.handler(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            head = (
                f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
                f"Content-Type: {reply.content_type}\r\n"
                f"Content-Length: {len(reply.body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + reply.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        return Request(method, target, headers, body)


def _fault_reply(fault: Fault, key_status: int, error_body: Callable[[str, str], object]) -> Reply:
    if fault is Fault.UNAUTHORIZED:
        return Reply.json(key_status, error_body("WrongCredentialsError", "Wrong API key"))
    if fault is Fault.QUOTA:
        return Reply.json(429, error_body("QuotaExceededError", "Quota exceeded"))
    if fault is Fault.SERVER_ERROR:
        return Reply.json(500, error_body("TransientError", "Try again later"))
    return Reply(200, b'{"data": {"attributes": {"last_analysis_stats": ')  # MALFORMED


class FakeVirusTotal(FakeHTTPServer):
    """VirusTotal v3 under /api/v3: URL reports by id, and URL submission."""

    def __init__(self) -> None:
        super().__init__(handler=self._handle)
        self.known: dict[str, dict[str, int]] = {}
        self.submitted: list[str] = []
        self.fault: Fault | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def add(self, url: str, *, malicious: int = 0, suspicious: int = 0, harmless: int = 70) -> None:
        """Make the fake know `url` (canonical form) with these engine counts."""
        self.known[url] = {
            "harmless": harmless,
            "malicious": malicious,
            "suspicious": suspicious,
            "undetected": 10,
            "timeout": 0,
        }

    @staticmethod
    def _error(code: str, message: str) -> object:
        return {"error": {"code": code, "message": message}}

    def _handle(self, request: Request) -> Reply:
        if request.headers.get("x-apikey") != VT_KEY:
            return Reply.json(401, self._error("WrongCredentialsError", "Wrong API key"))
        if self.fault is Fault.SLOW:
            self.delay = self.slow_seconds
        elif self.fault is not None:
            return _fault_reply(self.fault, 401, self._error)
        if request.method == "GET" and request.target.startswith("/api/v3/urls/"):
            url_id = request.target.removeprefix("/api/v3/urls/")
            url = base64.urlsafe_b64decode(url_id + "=" * (-len(url_id) % 4)).decode()
            stats = self.known.get(url)
            if stats is None:
                return Reply.json(404, self._error("NotFoundError", f'URL "{url_id}" not found'))
            return Reply.json(
                200,
                {
                    "data": {
                        "type": "url",
                        "id": "0" * 64,
                        "attributes": {
                            "url": url,
                            "last_analysis_date": 1700000000,
                            "last_analysis_stats": stats,
                            "reputation": -5 if stats["malicious"] else 0,
                            "categories": {},
                            "tags": [],
                        },
                    }
                },
            )
        if request.method == "POST" and request.target == "/api/v3/urls":
            url = parse_qs(request.body.decode())["url"][0]
            self.submitted.append(url)
            return Reply.json(200, {"data": {"type": "analysis", "id": f"u-{'1' * 64}-1700000000"}})
        return Reply.json(404, self._error("NotFoundError", "no such endpoint"))


class FakeOTX(FakeHTTPServer):
    """OTX DirectConnect v1 under /api/v1: url and hostname `general` sections."""

    def __init__(self) -> None:
        super().__init__(handler=self._handle)
        self.urls: dict[str, list[str]] = {}
        self.hosts: dict[str, list[str]] = {}
        self.allowed: set[str] = set()
        self.fault: Fault | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @staticmethod
    def _error(code: str, message: str) -> object:
        return {"detail": message}

    def _general(self, kind: str, indicator: str, pulses: list[str]) -> Reply:
        validation = [{"source": "majestic", "message": "Whitelisted", "name": "ok"}]
        return Reply.json(
            200,
            {
                "indicator": indicator,
                "type": kind,
                "type_title": kind.upper(),
                "validation": validation if indicator in self.allowed else [],
                "base_indicator": {},
                "pulse_info": {
                    "count": len(pulses),
                    "pulses": [
                        {"id": str(i), "name": name, "tags": ["phishing"], "created": "2024"}
                        for i, name in enumerate(pulses)
                    ],
                    "references": [],
                    "related": {},
                },
                "sections": ["general", "url_list"],
            },
        )

    def _handle(self, request: Request) -> Reply:
        if request.headers.get("x-otx-api-key") != OTX_KEY:
            return Reply.json(403, {"detail": "Authentication required"})
        if self.fault is Fault.SLOW:
            self.delay = self.slow_seconds
        elif self.fault is not None:
            return _fault_reply(self.fault, 403, self._error)
        prefix = "/api/v1/indicators/"
        if request.method != "GET" or not request.target.startswith(prefix):
            return Reply.json(404, {"detail": "Not found"})
        kind, _, rest = request.target.removeprefix(prefix).partition("/")
        indicator = unquote(rest.removesuffix("/general"))
        table = {"url": self.urls, "hostname": self.hosts}.get(kind, {})
        if indicator in table:
            return self._general(kind, indicator, table[indicator])
        if indicator in self.allowed:
            return self._general(kind, indicator, [])
        return Reply.json(404, {"detail": "Not found"})


@pytest.fixture
async def fake_vt() -> AsyncIterator[FakeVirusTotal]:
    """A fake VirusTotal on a free loopback port."""
    server = FakeVirusTotal()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def fake_otx() -> AsyncIterator[FakeOTX]:
    """A fake OTX on a free loopback port."""
    server = FakeOTX()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class FakeClock:
    """A clock tests move by hand; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)
