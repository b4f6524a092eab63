"""The baseline server: a bare websockets forwarder and a bare blob copy.

Same library, same settings (no compression, same size limit, queue and
keepalive) and the same frames as the relay: `login` answers `session`,
`send` answers `accepted` and forwards `deliver` with the same fields, and
`group_send` answers `accepted` and forwards `group_deliver` to every other
member (groups made by `group_commit`, answered `group_accepted`). What
it leaves out is what the relay's figures are about: validation, rate
limits, persistence (write batching), acknowledgement bookkeeping, the writer
task per connection. Files: binary chunks appended to one file and read
back, no base64, no per-chunk files, no bookkeeping.

Run: python -m bench.bare --port 8766 --dir /tmp/bare
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, serve

from securechat.protocol.limits import FILE_CHUNK_BYTES, MAX_FRAME_BYTES, SUBPROTOCOL

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


class Forwarder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.online: dict[str, ServerConnection] = {}
        self.sids = itertools.count(1)
        self.files = itertools.count(1)
        self.groups: dict[str, list[str]] = {}

    async def handle(self, ws: ServerConnection) -> None:
        name = ""
        blob: Path | None = None
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    blob = blob or self.directory / f"blob-{next(self.files)}"
                    with open(blob, "ab") as handle:
                        handle.write(message)
                    await ws.send(_encode({"type": "file_ready", "size": blob.stat().st_size}))
                    continue
                frame: dict[str, Any] = _decode(message)
                kind = frame["type"]
                if kind == "send":
                    await ws.send(_accepted(frame))
                    other = self.online.get(frame["to"])
                    if other is not None:
                        envelope = {
                            "sid": next(self.sids),
                            "sender": name,
                            "eid": frame["eid"],
                            "body": frame["body"],
                            "ts": time.time(),
                        }
                        await other.send(
                            _encode({"type": "deliver", "envelopes": [envelope]}).decode()
                        )
                elif kind == "group_send":
                    await ws.send(_accepted(frame))
                    for member in self.groups.get(frame["group"], ()):
                        other = self.online.get(member)
                        if member == name or other is None:
                            continue
                        envelope = {
                            "sid": next(self.sids),
                            "group": frame["group"],
                            "kind": "message",
                            "epoch": frame["epoch"],
                            "sender": name,
                            "eid": frame["eid"],
                            "body": frame["body"],
                            "ts": time.time(),
                        }
                        await other.send(
                            _encode({"type": "group_deliver", "envelopes": [envelope]}).decode()
                        )
                elif kind == "group_commit":
                    members = self.groups.setdefault(frame["group"], [name])
                    members += frame.get("added", [])
                    answer = {
                        "type": "group_accepted",
                        "rid": frame["rid"],
                        "group": frame["group"],
                        "epoch": frame["epoch"],
                        "eid": frame["eid"],
                    }
                    await ws.send(_encode(answer).decode())
                elif kind == "ack":
                    pass
                elif kind == "login":
                    name = frame["username"]
                    self.online[name] = ws
                    answer = {
                        "type": "session",
                        "rid": frame["rid"],
                        "username": name,
                        "token": "x" * 43,
                        "expires_at": time.time() + 86400,
                        "one_time_prekeys": 0,
                    }
                    await ws.send(_encode(answer).decode())
                elif kind == "file_get":
                    assert blob is not None
                    with open(blob, "rb") as handle:
                        handle.seek(frame["index"] * FILE_CHUNK_BYTES)
                        await ws.send(handle.read(FILE_CHUNK_BYTES))
                elif kind == "file_new":
                    blob = self.directory / f"blob-{next(self.files)}"
                    await ws.send(_encode({"type": "done", "rid": frame["rid"]}).decode())
        finally:
            if name and self.online.get(name) is ws:
                del self.online[name]


def _accepted(frame: dict[str, Any]) -> str:
    return _encode({"type": "accepted", "rid": frame["rid"], "eid": frame["eid"]}).decode()


async def serve_until_stopped(
    handler: Callable[[ServerConnection], Awaitable[None]], port: int
) -> None:
    """The websocket settings of both baselines (bare.py, plain.py), until SIGTERM or SIGINT."""
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=MAX_FRAME_BYTES,
        max_queue=64,
        ping_interval=20,
        ping_timeout=20,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
    ):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


async def main(port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    forwarder = Forwarder(directory)
    await serve_until_stopped(forwarder.handle, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.dir))
