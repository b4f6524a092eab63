"""A lean websocket client for the load generator: an asyncio Protocol, no tasks, no locks.

The machine has two cores, one for the server under test and one for the load.
A full client library spends about as much CPU per frame as the server does,
so the load generator would saturate first and both the relay and the bare
forwarder would measure the same (the generator's) limit. This client does the
least a client may: a fixed opening handshake, unfragmented frames, pongs, and
a zero masking key (RFC 6455 allows any key; a zero one makes masking a copy).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

from securechat.protocol.limits import SUBPROTOCOL

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def _header(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, 0x80 | length)) + b"\0\0\0\0"
    if length < 1 << 16:
        return bytes((first, 0xFE)) + length.to_bytes(2, "big") + b"\0\0\0\0"
    return bytes((first, 0xFF)) + length.to_bytes(8, "big") + b"\0\0\0\0"


class WsClient(asyncio.Protocol):
    def __init__(self, on_message: Callable[[WsClient, bytes], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.user: object = None
        """Whatever the load generator keeps per connection."""

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.opened.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if size < start + length:
                break
            payload = bytes(buf[start : start + length])
            pos = start + length
            if opcode in (OP_TEXT, OP_BINARY, 0):
                self.on_message(self, payload)
            elif opcode == OP_PING:
                self._write(OP_PONG, payload)
            elif opcode == OP_CLOSE and self.transport is not None:
                self._write(OP_CLOSE, payload[:2])
                self.transport.close()
        if pos:
            del buf[:pos]

    # --- sending -------------------------------------------------------------------

    def _write(self, opcode: int, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_header(opcode, len(data)) + data)

    def send_text(self, data: bytes) -> None:
        self._write(OP_TEXT, data)

    def send_binary(self, data: bytes) -> None:
        self._write(OP_BINARY, data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(OP_CLOSE, (1000).to_bytes(2, "big"))
            self.transport.close()


async def connect(
    port: int, on_message: Callable[[WsClient, bytes], None], host: str = "127.0.0.1"
) -> WsClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: WsClient(on_message), host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    )
    assert proto.transport is not None
    proto.transport.write(request.encode())
    await asyncio.wait_for(proto.opened, 30)
    return proto
