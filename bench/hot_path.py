"""The relay's message path in one process, without sockets or a database: ns per message.

    .venv/bin/python -m bench.hot_path [--clients 100] [--turns 300] [--repeats 7]
    .venv/bin/python -m bench.hot_path --ab SRC_A SRC_B [--rounds 11]

The end-to-end flood (`bench.ab`) measures the whole relay, kernel and
websockets included, and on a shared machine its rounds spread ±15 %: a 1 %
change on the message path cannot show there. This drives the relay's own
code the way a flood does (`Connection._receive` of a `send`, the early
delivery, the write batch, `accepted`, the turn writer, then an `ack` per
recipient, stored by the next write batch) with a fake socket and a store
that keeps nothing, and times it with the process's CPU clock.

`--ab` times two source trees (each a checkout's src/, put first on
PYTHONPATH, as bench.ab does) in alternating subprocesses and prints the
median of the rounds' B/A. At load 7 on 2 cores one round's ratio still
wanders by ±5 % and the median of 11 by 1-2 %: a change smaller than that
is for timing the pieces alone (bench/README.md, ops22). The two trees'
Connection and Relay constructors must match this harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from securechat.protocol import frames as F
from securechat.server.connection import Connection, TurnWriter
from securechat.server.metrics import Metrics
from securechat.server.relay import Relay
from securechat.server.store import NewEnvelope

BODY = "QUJD" * 85
"""About the flood's 256-byte body, base64."""


class _Socket:
    """What a Connection needs of its websocket on the fast path; frames are counted, not sent."""

    remote_address = ("127.0.0.1", 40000)

    def __init__(self) -> None:
        self.frames = 0

    def writable(self) -> bool:
        return True

    def write_frames(self, frames: list[str | bytes]) -> bool:
        self.frames += len(frames)
        return True


class _Store:
    """Hands out sids and stores nothing: the database is not what this measures."""

    def __init__(self) -> None:
        self.sid = 0

    async def reserve_sid(self, sender: str, eid: str) -> int | None:
        self.sid += 1
        return self.sid

    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        return (0, 0)

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
        acknowledged: Sequence[NewEnvelope] = (),
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        stored = [(env.sid or 0, True) for env in envelopes]
        freed = {user: (len(sids), 0) for user, sids in acks.items()}
        return stored, freed


async def _run(clients: int, turns: int) -> tuple[float, int]:
    """CPU seconds for `turns` rounds of one `send` per client, and the messages relayed."""
    relay = Relay(store=_Store(), metrics=Metrics(), commit_delay=3600.0)  # type: ignore[arg-type]
    writer = TurnWriter()
    names = [f"user{i:04d}" for i in range(clients)]

    async def dispatch(conn: Connection, frame: F.ClientFrame) -> None:
        assert conn.username is not None
        if isinstance(frame, F.Send):
            await relay.submit(conn, conn.username, frame)
        elif isinstance(frame, F.Ack):
            conn.acknowledged(frame.sids)
            relay.acknowledge(conn.username, frame.sids)

    conns = []
    for name in names:
        conn = Connection(
            _Socket(),  # type: ignore[arg-type]
            relay=relay,
            dispatch=dispatch,
            turn_writer=writer,
            metrics=relay.metrics,
            clock=time.time,
            frame_rate=1e9,
            frame_burst=1e9,
            auth_timeout=3600.0,
        )
        conn.username = name
        relay.connected(conn)
        conn._writer_idle = True  # the writer task waits: the turn writer's fast path
        conns.append(conn)
    sends = [
        [
            json.dumps(
                {
                    "type": "send",
                    "rid": t,
                    "to": names[(i + 1) % clients],
                    "eid": f"e{t}",
                    "body": BODY,
                }
            )
            for i in range(clients)
        ]
        for t in range(turns)
    ]
    started = time.process_time()
    for t in range(turns):
        for conn, frame in zip(conns, sends[t], strict=True):
            await conn._receive(frame)
        await asyncio.sleep(0)  # the turn writer sends the early deliveries
        if relay._batch_timer is not None:
            relay._batch_timer.cancel()
            relay._batch_timer = None
        await relay._flush()  # the write batch: `accepted` for every send, the last acks
        await asyncio.sleep(0)
        for conn in conns:
            sids = sorted(conn._unacked)
            await conn._receive(json.dumps({"type": "ack", "rid": 0, "sids": sids}))
    spent = time.process_time() - started
    for conn in conns:
        conn._auth_deadline.cancel()
    return spent, clients * turns


def measure(clients: int, turns: int, repeats: int) -> dict[str, Any]:
    runs = [asyncio.run(_run(clients, turns)) for _ in range(repeats)]
    per_message = [1e9 * spent / count for spent, count in runs]
    return {
        "ns_per_message_min": min(per_message),
        "ns_per_message_median": statistics.median(per_message),
        "runs": per_message,
    }


def _in_subprocess(src: str, clients: int, turns: int, repeats: int) -> float:
    """The fastest of `repeats` runs of the relay in `src`, in ns per message."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    args = ["--clients", str(clients), "--turns", str(turns), "--repeats", str(repeats)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.hot_path", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["ns_per_message_min"])


def ab(
    src_a: str, src_b: str, rounds: int, clients: int, turns: int, repeats: int
) -> dict[str, Any]:
    """Rounds alternate A B / B A, so a neighbour's load drifting hits both alike."""
    runs: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(rounds):
        for key in ("A", "B") if i % 2 == 0 else ("B", "A"):
            src = src_a if key == "A" else src_b
            runs[key].append(_in_subprocess(src, clients, turns, repeats))
    ratios = [b / a for a, b in zip(runs["A"], runs["B"], strict=True)]
    return {
        "a_ns": statistics.median(runs["A"]),
        "b_ns": statistics.median(runs["B"]),
        "b_over_a": statistics.median(ratios),
        "ratios": [round(r, 4) for r in ratios],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ab", nargs=2, metavar=("SRC_A", "SRC_B"))
    parser.add_argument("--rounds", type=int, default=11, help="with --ab")
    args = parser.parse_args(argv)
    if args.ab:
        result = ab(*args.ab, args.rounds, args.clients, args.turns, args.repeats)
    else:
        result = measure(args.clients, args.turns, args.repeats)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
