"""One websocket to the relay: requests matched to answers by `rid`, pushes handed on.

It knows nothing of reconnecting or of what envelopes contain; `RelayClient`
builds that on top.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.typing import Subprotocol

from securechat.errors import ConnectionLost, ProtocolError, ServerRejected
from securechat.protocol import frames as F
from securechat.protocol.codec import (
    encode_bulk,
    encode_str,
    parse_server_bulk,
    parse_server_frame,
)
from securechat.protocol.limits import MAX_FRAME_BYTES, SUBPROTOCOL

log = logging.getLogger("securechat.client.connection")

CLIENT_PING_INTERVAL = 4.0
CLIENT_PING_TIMEOUT = 3.0
"""A dead network is noticed within seconds, then the client reconnects (and watches again)."""

_websocket_log = logging.getLogger("securechat.client.websocket")
_websocket_log.setLevel(logging.WARNING)
"""websockets logs whole frames at DEBUG: they hold passwords. Never below WARNING."""

PushHandler = Callable[[F.ServerFrame], Awaitable[None]]


class CertificatePinMismatch(ConnectionLost):
    """The relay's TLS certificate is not the pinned one: possibly an impostor."""


class UntrustedCertificate(ConnectionLost):
    """Without a pin, the relay's certificate must chain to a CA this computer trusts."""


class RelayConnection:
    def __init__(self, ws: ClientConnection, on_push: PushHandler) -> None:
        self.ws = ws
        self._on_push = on_push
        self.binary_files = False
        """Set from `session`: file chunks go as binary messages only to a relay that said so."""
        self._rids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[F.ServerFrame]] = {}
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def open(
        cls,
        url: str,
        on_push: PushHandler,
        *,
        pin_sha256: str | None = None,
        timeout: float = 10.0,
    ) -> RelayConnection:
        try:
            ws = await connect(
                url,
                ssl=_tls_context(url, pin_sha256),
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                compression=None,
                max_size=MAX_FRAME_BYTES,
                open_timeout=timeout,
                ping_interval=CLIENT_PING_INTERVAL,
                ping_timeout=CLIENT_PING_TIMEOUT,
                logger=_websocket_log,
            )
        except InvalidURI as exc:
            raise ConnectionLost(f"{url!r} is not a ws:// or wss:// address") from exc
        except ssl.SSLCertVerificationError as exc:
            raise UntrustedCertificate(
                f"the relay at {url} presented a certificate this computer does not trust "
                f"({exc.verify_message}): give its SHA-256 with --pin, or trust the CA that "
                "signed it (system store, or SSL_CERT_FILE)"
            ) from exc
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise ConnectionLost(f"cannot reach the relay at {url}: {exc}") from exc
        if pin_sha256:
            _check_pin(ws, pin_sha256)
        return cls(ws, on_push)

    async def request(self, frame: F.ClientFrame, timeout: float = 30.0) -> F.ServerFrame:
        """Sends a request and waits for its answer; an `error` answer raises ServerRejected."""
        return await self.answer(await self.start_request(frame), frame.rid, timeout)

    async def start_request(self, frame: F.ClientFrame) -> asyncio.Future[F.ServerFrame]:
        """Sends without waiting, so several requests can be in flight (file transfers)."""
        future: asyncio.Future[F.ServerFrame] = asyncio.get_running_loop().create_future()
        self._waiting[frame.rid] = future
        try:
            await self.send(frame)
        except BaseException:
            self._waiting.pop(frame.rid, None)
            raise
        return future

    async def answer(
        self, future: asyncio.Future[F.ServerFrame], rid: int, timeout: float = 30.0
    ) -> F.ServerFrame:
        try:
            answer = await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(rid, None)
        if isinstance(answer, F.Error):
            raise ServerRejected(answer.code, answer.message)
        return answer

    def next_rid(self) -> int:
        return next(self._rids)

    async def send(self, frame: F.ClientFrame) -> None:
        try:
            if self.binary_files and isinstance(frame, F.FileChunk):
                await self.ws.send(encode_bulk(frame))
            else:
                await self.ws.send(encode_str(frame))
        except ConnectionClosed as exc:
            raise ConnectionLost("the relay closed the connection") from exc

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                try:
                    if isinstance(message, bytes):
                        frame = parse_server_bulk(message)
                    else:
                        frame = parse_server_frame(message)
                except ProtocolError as exc:
                    log.warning("ignored a malformed frame from the relay: %s", exc.message)
                    continue
                rid = getattr(frame, "rid", None)
                waiter = self._waiting.get(rid) if rid is not None else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                elif rid is None:
                    await self._on_push(frame)
        except ConnectionClosed:
            pass
        finally:
            reason = self.ws.close_reason or "connection closed"
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionLost(f"the relay went away: {reason}"))
            self.closed.set()


def _tls_context(url: str, pin_sha256: str | None) -> ssl.SSLContext | None:
    """TLS for wss://: the pin when there is one, else the system's CAs and the host name.

    `create_default_context` reads the operating system's store, which the
    SSL_CERT_FILE and SSL_CERT_DIR variables replace (a private CA, tests).
    """
    if not url.lower().startswith("wss://"):
        return None
    if not pin_sha256:
        return ssl.create_default_context()
    # The pin replaces CA validation: a self-signed relay certificate is normal.
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    return tls


def _check_pin(ws: ClientConnection, pin_sha256: str) -> None:
    ssl_object = ws.transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    expected = pin_sha256.replace(":", "").lower()
    actual = hashlib.sha256(der).hexdigest() if der else ""
    if not hmac.compare_digest(actual, expected):
        asyncio.get_running_loop().create_task(ws.close(1008, "certificate pin mismatch"))
        raise CertificatePinMismatch(
            "the relay's certificate does not match the pinned SHA-256 fingerprint "
            f"({actual or 'no TLS'}); do not continue unless the operator changed it"
        )
