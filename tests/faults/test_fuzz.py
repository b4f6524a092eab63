"""Generated and mutated frames against a live relay process, while two users chat.

Passing means: the relay never crashes or logs a traceback or an internal
error, and the pair of ordinary clients gets every message, during and after.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from securechat.protocol.limits import MAX_FRAME_BYTES, SUBPROTOCOL
from tests.faults.frames import FrameFactory
from tests.faults.harness import (
    Ledger,
    User,
    check_exactly_once,
    log_problems,
    settle,
    sign_up,
)
from tests.procs import RelayProcess
from tests.wire import PASSWORD, Wire

FUZZ_USERS = [f"fuzz{i}" for i in range(6)]
PROBE_RID = 2**52 - 7
"""The rid of the probe closing each batch: its answer means the batch was read.

Not 2**53 - 1: the fuzzer sends that one itself (the largest valid rid)."""

CLOSES_WE_EXPECT = {1000, 1007, 1008, 1009}
"""Logout/delete, invalid UTF-8, policy (rate limit, auth timeout), message too big."""


@dataclass
class Tally:
    sent: int = 0
    reconnects: int = 0
    close_codes: dict[int | None, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)


async def _tokens(url: str, per_user: int) -> list[str]:
    """Session tokens made before fuzzing: failed logins soon lock out 127.0.0.1."""
    tokens = []
    for name in FUZZ_USERS:
        for _ in range(per_user):
            wire = await Wire.open(url)
            answer = await wire.call("login", username=name, password=PASSWORD)
            assert answer["type"] == "session", answer
            tokens.append(answer["token"])
            await wire.close()
    return tokens


async def _open(url: str, token: str | None) -> tuple[ClientConnection, bool]:
    ws = await connect(
        url,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_size=None,
        open_timeout=10,
        close_timeout=1,
    )
    if token is None:
        return ws, False
    await ws.send(json.dumps({"type": "resume", "rid": 1, "token": token}))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return ws, answer["type"] == "session"


async def _read_until_probe(ws: ClientConnection, tally: Tally, timeout: float) -> None:
    """Reads answers up to the probe's; acknowledges deliveries like a real client."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            kind = frame.get("code", frame["type"])
            tally.answers[kind] = tally.answers.get(kind, 0) + 1
            if frame["type"] == "deliver" and frame["envelopes"]:
                sids = [e["sid"] for e in frame["envelopes"]]
                await ws.send(json.dumps({"type": "ack", "rid": 0, "sids": sids}))
            if frame.get("rid") == PROBE_RID:
                return


async def _fuzzer(
    url: str,
    factory: FrameFactory,
    quota: int,
    batch: int,
    tokens: list[str],
    tally: Tally,
    deadline: float,
) -> None:
    """Sends `quota` frames in batches, each closed by a probe; reconnects after a close."""
    probe = json.dumps({"type": "watch", "rid": PROBE_RID, "users": []})
    ws: ClientConnection | None = None
    authenticated = False
    sent = 0
    while sent < quota and time.monotonic() < deadline:
        if ws is None:
            token = tokens.pop() if tokens and factory.rng.random() < 0.7 else None
            try:
                ws, authenticated = await _open(url, token)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            tally.reconnects += 1
            if token is not None:
                tokens.insert(0, token)
        try:
            for _ in range(min(batch, quota - sent)):
                frame = factory.frame(authenticated)
                fatal = len(frame) > MAX_FRAME_BYTES
                if isinstance(frame, bytes) and factory.fatal and factory.rng.random() < 0.1:
                    await ws.send(frame, text=True)  # invalid UTF-8 in a text frame
                    fatal = True
                else:
                    await ws.send(frame)
                sent += 1
                tally.sent += 1
                if fatal:
                    break  # the relay closes here; what follows would not be read
            await ws.send(probe)
            await _read_until_probe(ws, tally, timeout=30)
        except (ConnectionClosed, AttributeError) as exc:
            # AttributeError: asyncio 3.11's transport.abort() after a close whose buffer
            # drained already (loop is None); websockets calls it when close_timeout ends.
            # It is the test client's socket, not the relay: count it as a close.
            if isinstance(exc, AttributeError) and "call_soon" not in str(exc):
                raise
            code = ws.close_code
            tally.close_codes[code] = tally.close_codes.get(code, 0) + 1
            ws = None
    if ws is not None:
        await ws.close()


async def _chat(users: list[User], ledger: Ledger, stop: asyncio.Event, prefix: str) -> None:
    """The ordinary pair, one message each way every 20 ms (at most 3,000)."""
    alice, bob = users
    for i in range(1500):
        if stop.is_set():
            return
        for sender, to in ((alice, bob), (bob, alice)):
            ledger.record(sender.name, to.name, f"{prefix}{i}")
            await sender.send(to.name, f"{prefix}{i}")
        await asyncio.sleep(0.02)


async def _fuzz_live_relay(
    tmp_path: Path,
    frames: int,
    connections: int,
    seed: int,
    budget: float,
    limits: dict[str, str],
    batch: int = 200,
    fatal: bool = True,
) -> Tally:
    relay = RelayProcess(tmp_path / "relay", **limits)
    for key in ("VT_API_KEY", "OTX_API_KEY"):
        relay.env.pop(key, None)  # loopback only: no URL scanning providers
    await asyncio.to_thread(relay.start)
    pair: list[User] = []
    tally = Tally()
    try:
        for user in await sign_up(relay.url, FUZZ_USERS):
            await user.close()
        tokens = await _tokens(relay.url, per_user=4)
        pair = await sign_up(relay.url, ["alice", "bob"])
        ledger = Ledger()
        stop = asyncio.Event()
        chat = asyncio.create_task(_chat(pair, ledger, stop, "during"))
        started = time.monotonic()
        deadline = started + budget
        rng = random.Random(seed)
        per = frames // connections
        async with asyncio.TaskGroup() as group:  # one failure stops every fuzzer
            for i in range(connections):
                group.create_task(
                    _fuzzer(
                        relay.url,
                        FrameFactory(rng.getrandbits(64), FUZZ_USERS, fatal=fatal),
                        per + (frames % connections if i == 0 else 0),
                        batch,
                        tokens,
                        tally,
                        deadline,
                    )
                )
        elapsed = time.monotonic() - started
        stop.set()
        await chat
        for i in range(20):
            for sender, to in ((pair[0], pair[1]), (pair[1], pair[0])):
                ledger.record(sender.name, to.name, f"after{i}")
                await sender.send(to.name, f"after{i}")
        await settle(pair, ledger, timeout=30)
        summary = check_exactly_once(pair, ledger)
        print(
            f"\nfuzz: {tally.sent} frames in {elapsed:.1f} s over {tally.reconnects} connections;"
            f" closes {tally.close_codes}; answers {dict(sorted(tally.answers.items()))};"
            f" pair {summary}"
        )
        assert tally.sent >= frames, f"only {tally.sent} of {frames} frames sent in {budget} s"
        assert relay.proc is not None and relay.proc.poll() is None, "the relay died"
        assert set(tally.close_codes) <= CLOSES_WE_EXPECT, tally.close_codes
        assert tally.answers.get("internal", 0) == 0
        assert log_problems(relay.log) == [], log_problems(relay.log)[:5]
        return tally
    finally:
        await asyncio.gather(*(u.close() for u in pair), return_exceptions=True)
        await asyncio.to_thread(relay.kill)


FAST = {"SECURECHAT_FRAME_RATE": "1000000", "SECURECHAT_FRAME_BURST": "1000000"}


async def test_fuzz_100k_frames(tmp_path: Path) -> None:
    """100,000 generated and mutated frames: no crash, no traceback, the pair unaffected."""
    await _fuzz_live_relay(tmp_path, 100_000, connections=8, seed=1, budget=90, limits=FAST)


async def test_fuzz_at_default_rate_limits(tmp_path: Path) -> None:
    """Production limits: floods are refused, then closed (1008), and nothing else breaks."""
    tally = await _fuzz_live_relay(
        tmp_path, 6_000, connections=4, seed=2, budget=60, limits={}, batch=1_500, fatal=False
    )
    assert tally.answers.get("rate_limited", 0) > 0
    assert tally.close_codes.get(1008, 0) > 0


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_fuzz_million_frames(tmp_path: Path) -> None:
    """A longer run with other seeds, for `make soak`."""
    await _fuzz_live_relay(tmp_path, 1_000_000, connections=16, seed=3, budget=800, limits=FAST)


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "send", "rid": 5, "to": ' + "[" * 1_000 + "]" * 1_000 + "}",
        '{"rid": 5, "x": ' + "[" * 10_000 + "]" * 10_000 + ', "type": "send"}',
        '{"rid": 5, "type": "ack", "sids": [1], "extra": '
        + '{"a":' * 100_000
        + "1"
        + "}" * 100_000
        + "}",
    ],
    ids=["1k-after-tag", "10k-before-tag", "100k-objects"],
)
async def test_deeply_nested_json_is_a_bad_request(relay_url: str, raw: str) -> None:
    """JSON nested past the decoder's depth is refused like any broken frame, not a crash."""
    wire = await Wire.open(relay_url)
    await wire.send(raw)
    answer = await wire.recv()
    assert answer["type"] == "error" and answer["code"] == "bad_request", answer
    assert (await wire.call("resume", token="nope"))["code"] == "unauthorized"
