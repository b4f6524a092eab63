"""The client side of the file benchmark, in its own process so its memory is its own.

`securechat` mode: two ChatClients (alice sends, bob receives) with an active
session, then per repeat `send_file` and `download` of the same file.
`bare` mode: the same bytes in 64 KiB binary messages through a websocket to
the bare server and back, 8 requests in flight like the client.

Both reset VmHWM before each transfer, for themselves and for the server
(pid in the spec), and report the peak growth over the RSS at the start.

Spec on stdin, JSON result on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.common import PASSWORD, memory_kib, reset_peak
from securechat.protocol.limits import FILE_CHUNK_BYTES, MAX_FRAME_BYTES, SUBPROTOCOL

WINDOW = 8


class Peaks:
    """Peak RSS growth of this process and of the server during one transfer."""

    def __init__(self, server_pid: int) -> None:
        self.pids = {"client": os.getpid(), "server": server_pid}
        self.base: dict[str, int] = {}

    def start(self) -> None:
        for name, pid in self.pids.items():
            reset_peak(pid)
            self.base[name] = memory_kib(pid, "VmRSS")

    def growth_mib(self) -> dict[str, float]:
        return {
            f"{name}_peak_growth_mib": (memory_kib(pid, "VmHWM") - self.base[name]) / 1024
            for name, pid in self.pids.items()
        }


async def _wait_offer(client: Any, blob_id: str) -> None:
    from securechat.client.events import FileOffered

    while True:
        event = await asyncio.wait_for(client.events.get(), 60)
        if isinstance(event, FileOffered) and event.file_id == blob_id:
            return


async def _secure(alice: Any, bob: Any) -> None:
    from securechat.client.events import ConversationChanged, ConversationState

    async def wait(client: Any, **match: object) -> None:
        while True:
            event = await asyncio.wait_for(client.events.get(), 60)
            if isinstance(event, ConversationChanged) and all(
                getattr(event, k) == v for k, v in match.items()
            ):
                return

    await alice.sharekey("bob")
    await bob.sharekey("alice")
    await wait(alice, peer="bob")
    await alice.talk("bob")
    await wait(alice, peer="bob", state=ConversationState.ACTIVE)
    await wait(bob, peer="alice", state=ConversationState.ACTIVE)


async def securechat(spec: dict[str, Any]) -> list[dict[str, Any]]:
    from securechat.client.core import ChatClient

    work = Path(spec["dir"])
    alice = ChatClient(spec["url"], work / "alice")
    bob = ChatClient(spec["url"], work / "bob")
    await alice.connect()
    await bob.connect()
    await alice.register("alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    await _secure(alice, bob)
    peaks = Peaks(spec["server_pid"])
    results = []
    for i in range(spec["repeats"]):
        peaks.start()
        start = time.perf_counter()
        blob_id = await alice.send_file("bob", spec["file"])
        await _wait_offer(bob, blob_id)
        sent = time.perf_counter()
        saved = await bob.download(blob_id, work / "downloads")
        done = time.perf_counter()
        results.append(
            {"send_s": sent - start, "receive_s": done - sent, "total_s": done - start}
            | peaks.growth_mib()
        )
        saved.unlink()
        print(f"securechat transfer {i + 1}: {done - start:.2f} s", file=sys.stderr)
        await asyncio.sleep(0.2)
    await alice.close()
    await bob.close()
    return results


async def bare(spec: dict[str, Any]) -> list[dict[str, Any]]:
    peaks = Peaks(spec["server_pid"])
    size = Path(spec["file"]).stat().st_size
    chunks = -(-size // FILE_CHUNK_BYTES)
    target = Path(spec["dir"]) / "copy.bin"
    results = []
    async with connect(
        spec["url"],
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_size=MAX_FRAME_BYTES,
    ) as ws:
        for i in range(spec["repeats"]):
            peaks.start()
            start = time.perf_counter()
            await ws.send(json.dumps({"type": "file_new", "rid": 1}))
            await ws.recv()
            in_flight: deque[None] = deque()
            with open(spec["file"], "rb") as source:
                while block := source.read(FILE_CHUNK_BYTES):
                    if len(in_flight) == WINDOW:
                        await ws.recv()
                        in_flight.popleft()
                    await ws.send(block)
                    in_flight.append(None)
            while in_flight:
                await ws.recv()
                in_flight.popleft()
            sent = time.perf_counter()
            with open(target, "wb") as out:
                requested = 0
                for _ in range(min(WINDOW, chunks)):
                    await ws.send(json.dumps({"type": "file_get", "index": requested}))
                    requested += 1
                for _ in range(chunks):
                    data = await ws.recv()
                    if requested < chunks:
                        await ws.send(json.dumps({"type": "file_get", "index": requested}))
                        requested += 1
                    out.write(data if isinstance(data, bytes) else data.encode())
                out.flush()
                os.fsync(out.fileno())
            done = time.perf_counter()
            assert target.stat().st_size == size
            target.unlink()
            results.append(
                {"send_s": sent - start, "receive_s": done - sent, "total_s": done - start}
                | peaks.growth_mib()
            )
            print(f"bare transfer {i + 1}: {done - start:.2f} s", file=sys.stderr)
    return results


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    mode = {"securechat": securechat, "bare": bare}[spec["mode"]]
    print(json.dumps(asyncio.run(mode(spec))), flush=True)


if __name__ == "__main__":
    main()
