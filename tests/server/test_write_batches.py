"""How many write batches may await the store at once: one on SQLite, two on a store
across the network, each answered `accepted` only after its own commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from securechat.protocol import frames as F
from securechat.server.metrics import Metrics
from securechat.server.relay import Relay
from securechat.server.store import NewEnvelope, StoredEnvelope


class GatedStore:
    """A queue store whose every `write_batch` waits until the test opens its gate."""

    answers_at_once = False

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], asyncio.Event]] = []
        self.sid = 0

    async def queue_usage(self, recipient: str) -> tuple[int, int]:
        return (0, 0)

    async def reserve_sid(self, sender: str, eid: str) -> None:
        return None

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        gate = asyncio.Event()
        self.batches.append(([env.eid for env in envelopes], gate))
        await gate.wait()
        stored = []
        for _ in envelopes:
            self.sid += 1
            stored.append((self.sid, True))
        return stored, {}


class Sender:
    username: str | None = "alice"
    token: str | None = None

    def __init__(self) -> None:
        self.accepted: list[str] = []

    def push(self, frame: str | bytes) -> None:
        answer = json.loads(frame)
        assert answer["type"] == "accepted", answer
        self.accepted.append(answer["eid"])

    def wake_delivery(self, envelope: StoredEnvelope | None) -> None: ...
    def wake_backlog(self) -> None: ...
    def flush(self) -> None: ...
    def end_session(self, reason: str) -> None: ...


async def until(condition: Any) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.mark.parametrize("in_flight", [1, 2])
async def test_a_batch_waits_for_the_one_before_only_when_one_may_be_in_flight(
    in_flight: int,
) -> None:
    store = GatedStore()
    relay = Relay(store, Metrics(), commit_delay=0.001, batches_in_flight=in_flight)  # type: ignore[arg-type]
    sender = Sender()
    await relay.submit(sender, "alice", F.Send(rid=1, to="bob", eid="first", body=b"x"))
    await until(lambda: len(store.batches) == 1)
    await relay.submit(sender, "alice", F.Send(rid=2, to="bob", eid="second", body=b"x"))
    await asyncio.sleep(0.05)

    if in_flight == 1:
        assert [eids for eids, _ in store.batches] == [["first"]]
        store.batches[0][1].set()
        await until(lambda: len(store.batches) == 2)
        assert sender.accepted == ["first"]
        store.batches[1][1].set()
    else:
        assert [eids for eids, _ in store.batches] == [["first"], ["second"]]
        store.batches[1][1].set()  # the second commits first: answered, the first not yet
        await until(lambda: sender.accepted == ["second"])
        await asyncio.sleep(0.01)
        assert sender.accepted == ["second"]
        store.batches[0][1].set()
    await relay.drain()
    assert sorted(sender.accepted) == ["first", "second"]
