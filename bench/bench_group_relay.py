"""Relay CPU per delivered copy: a message to a 100-member and to a 1,000-member group
against one-to-one messages, measured in the same run, rounds interleaved.

Issue 20's target: a group message costs the relay at most 1.2x per delivered
copy what a one-to-one message costs. Both run against one relay process
(SQLite, the default store; the frame rate limit off, as for the relay bench's
floods): in a round, one client sends 256-byte one-to-one messages to another
(a window of 8 unanswered), then the same client sends group messages to a
group of 100 (99 copies each, a window of 2); every recipient acknowledges
each delivery frame. The 1,000-member group sends fewer messages a round
(each is 999 copies) and has its own relay and one-to-one baseline. The relay's CPU (all threads) is
read before and after each phase, which ends when every copy was delivered
and a short settle let the acknowledgements be written.

Run: .venv/bin/python -m bench group-relay
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable
from typing import Any

from bench.bench_relay import UNLIMITED, register
from bench.common import PASSWORD, Row, Server, log, row, scratch, tree_cpu_seconds, users
from bench.wsclient import WsClient, connect

SIZES = {100: 20, 1_000: 4}
"""Members of the group, and its sends a round (about 2,000 to 4,000 copies)."""
BODY = base64.b64encode(os.urandom(256)).decode()
GROUP = base64.b64encode(os.urandom(16)).decode()
SETTLE = 0.3
"""Seconds after the last delivery for the acknowledgements to be written."""
TARGET = 1.2


class _Peer:
    """One logged-in user: answers by rid, acknowledges every delivery frame."""

    def __init__(self, counter: _Copies) -> None:
        self.ws: WsClient | None = None
        self.rid = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.counter = counter

    def on_message(self, ws: WsClient, data: bytes) -> None:
        frame = json.loads(data)
        if frame["type"] in ("deliver", "group_deliver"):
            sids = [env["sid"] for env in frame["envelopes"]]
            ws.send_text(json.dumps({"type": "ack", "rid": 0, "sids": sids}).encode())
            self.counter.add(len(sids))
            return
        waiter = self.waiting.pop(frame.get("rid", -1), None)
        if waiter is not None:
            waiter.set_result(frame)

    def request(self, type_: str, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        assert self.ws is not None
        self.rid += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.rid] = future
        self.ws.send_text(json.dumps({"type": type_, "rid": self.rid, **fields}).encode())
        return future


class _Copies:
    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, copies: int) -> None:
        self.count, self.target = 0, copies
        self.reached.clear()

    def add(self, copies: int) -> None:
        self.count += copies
        if self.count >= self.target:
            self.reached.set()


async def _pipelined(peer: _Peer, frames: list[tuple[str, dict[str, Any]]], window: int) -> None:
    """Sends with at most `window` unanswered; every answer must be `accepted`."""
    pending: set[asyncio.Future[dict[str, Any]]] = set()
    for type_, fields in frames:
        if len(pending) >= window:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for answer in done:
                assert answer.result()["type"] == "accepted", answer.result()
        pending.add(peer.request(type_, **fields))
    for answer in await asyncio.gather(*pending):
        assert answer["type"] == "accepted", answer


async def _phase(server: Server, copies: _Copies, expected: int, send: Awaitable[None]) -> float:
    """Relay CPU µs per delivered copy for what `send` sends."""
    copies.expect(expected)
    before = tree_cpu_seconds(server.pid)
    await send
    await asyncio.wait_for(copies.reached.wait(), 120)
    await asyncio.sleep(SETTLE)
    return (tree_cpu_seconds(server.pid) - before) * 1e6 / expected


async def _measure(
    server: Server, names: list[str], rounds: int, direct: int, sends: int
) -> tuple[list[float], list[float]]:
    members = len(names)
    copies = _Copies()
    peers = [_Peer(copies) for _ in names]
    for peer, name in zip(peers, names, strict=True):
        peer.ws = await connect(server.port, peer.on_message)
        answer = await peer.request("login", username=name, password=PASSWORD)
        assert answer["type"] == "session", answer
    sender = peers[0]
    copies.expect(members - 1)
    for epoch, changes in ((0, {}), (1, {"added": names[1:], "welcome": BODY})):
        answer = await sender.request(
            "group_commit", group=GROUP, epoch=epoch, eid=f"c{epoch}", commit=BODY, **changes
        )
        assert answer["type"] == "group_accepted", answer
    await asyncio.wait_for(copies.reached.wait(), 60)
    group_costs, direct_costs = [], []
    for r in range(rounds):
        one_to_one = [
            ("send", {"to": names[1], "eid": f"d{r}-{i}", "body": BODY}) for i in range(direct)
        ]
        direct_costs.append(await _phase(server, copies, direct, _pipelined(sender, one_to_one, 8)))
        to_group = [
            ("group_send", {"group": GROUP, "epoch": 2, "eid": f"g{r}-{i}", "body": BODY})
            for i in range(sends)
        ]
        group_costs.append(
            await _phase(server, copies, sends * (members - 1), _pipelined(sender, to_group, 2))
        )
        log(
            f"round {r + 1}: one-to-one {direct_costs[-1]:.1f} µs/copy, "
            f"group of {members} {group_costs[-1]:.1f} µs/copy"
        )
    for peer in peers:
        assert peer.ws is not None
        peer.ws.close()
    return group_costs, direct_costs


def run(quick: bool = False) -> list[Row]:
    sizes = {100: 3} if quick else SIZES
    return [_one_size(members, sends, quick) for members, sends in sizes.items()]


def _one_size(members: int, sends: int, quick: bool) -> Row:
    rounds, direct = (1, 300) if quick else (5, 2000)
    load = os.getloadavg()[0]
    with scratch("group-relay") as root, Server("relay", root / "relay", env=UNLIMITED) as server:
        names = users("g", members)
        register(server, names)
        started = time.perf_counter()
        group_costs, direct_costs = asyncio.run(_measure(server, names, rounds, direct, sends))
        log(f"measured in {time.perf_counter() - started:.1f} s")
    result = row(
        "group-relay",
        f"relay CPU per delivered copy, group of {members:,} vs one-to-one",
        group_costs,
        "µs/copy",
        direct_costs,
        target=f"≤ {TARGET}x",
        note=f"SQLite; {sends} group sends and {direct} one-to-one messages a round; "
        f"load average {load:.1f} at the start",
        digits=1,
    )
    result["met"] = result.get("ratio") is not None and result["ratio"] <= TARGET
    return result
