"""A raw protocol client for tests: frames in and out, no client core in between."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from securechat.protocol.limits import SUBPROTOCOL

PASSWORD = "correct horse battery"


class Wire:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.rid = 0
        self.pushes: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str) -> Wire:
        ws = await connect(url, subprotocols=[SUBPROTOCOL], compression=None)  # type: ignore[list-item]
        return cls(ws)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)

    async def call(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Sends a request and returns its answer, keeping pushes aside."""
        self.rid += 1
        await self.send({"type": type_, "rid": self.rid, **fields})
        while True:
            frame = await self.recv()
            if frame.get("rid") == self.rid:
                return frame
            self.pushes.append(frame)

    async def next_push(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        for i, frame in enumerate(self.pushes):
            if frame["type"] == type_:
                return self.pushes.pop(i)
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == type_:
                return frame
            self.pushes.append(frame)

    async def closed_because(self, timeout: float = 5.0) -> str:
        """Waits for the relay to close this connection and returns its reason."""
        async with asyncio.timeout(timeout):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.ws.recv()
        return self.ws.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


async def signed_up(url: str, username: str, password: str = PASSWORD) -> Wire:
    """A connection of a freshly registered, logged-in user."""
    wire = await Wire.open(url)
    answer = await wire.call(
        "register", username=username, password=password, recovery_token=b64(os.urandom(32))
    )
    assert answer["type"] == "registered", answer
    answer = await wire.call("login", username=username, password=password)
    assert answer["type"] == "session", answer
    return wire


async def logged_in(url: str, username: str, password: str = PASSWORD) -> Wire:
    wire = await Wire.open(url)
    answer = await wire.call("login", username=username, password=password)
    assert answer["type"] == "session", answer
    return wire
