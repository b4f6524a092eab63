"""A JSON-RPC client for the daemon tests: calls by id, notifications kept in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any


class RpcClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.notes: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @classmethod
    async def unix(cls, path: Path, timeout: float = 20.0) -> RpcClient:
        """Connects once the daemon listens (a daemon process takes a moment to unlock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
                return cls(reader, writer)
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def send_line(self, line: bytes) -> None:
        self.writer.write(line)
        await self.writer.drain()

    async def read(self, timeout: float = 10.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise EOFError
        value: dict[str, Any] = json.loads(line)
        return value

    async def answer(self, request_id: object, timeout: float = 10.0) -> dict[str, Any]:
        """The response to `request_id`; notifications read meanwhile are kept."""
        while True:
            value = await self.read(timeout)
            if isinstance(value, dict) and "method" in value:
                self.notes.append(value)
            elif isinstance(value, dict) and value.get("id") == request_id:
                return value

    async def request(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        await self.send_line(json.dumps(body).encode() + b"\n")
        return await self.answer(request_id)

    async def call(self, method: str, **params: Any) -> Any:
        answer = await self.request(method, **params)
        assert "result" in answer, answer
        return answer["result"]

    async def messages(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The next `count` message notifications (others are kept in `notes`)."""
        found: list[dict[str, Any]] = []
        while self.notes and len(found) < count:
            note = self.notes.pop(0)
            if note["params"].get("type") == "message":
                found.append(note["params"])
        while len(found) < count:
            value = await self.read(timeout)
            if value.get("method") == "receive" and value["params"].get("type") == "message":
                found.append(value["params"])
        return found

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
