"""Durability: what the relay accepted survives SIGKILL."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.procs import RelayProcess
from tests.wire import b64, logged_in, signed_up


async def _send_until_killed(
    url: str, relay: RelayProcess, accepted: list[str], prefix: str
) -> None:
    alice = await logged_in(url, "alice")
    kill_after = random.randint(50, 150)
    try:
        for i in range(400):
            eid = f"{prefix}m{i}"
            await alice.send(
                {"type": "send", "rid": i + 1, "to": "bob", "eid": eid, "body": b64(eid.encode())}
            )
            if i == kill_after:
                relay.kill()
            while True:
                answer = await alice.recv()
                if answer.get("rid") == i + 1:
                    break
            if answer["type"] == "accepted":
                accepted.append(eid)
    except (ConnectionClosed, TimeoutError, OSError):
        pass


async def test_sigkill_loses_no_accepted_envelope(tmp_path: Path) -> None:
    """Every envelope answered `accepted` before a SIGKILL is delivered exactly once after restart.

    Exactly once to the application means: the relay may redeliver what was not
    acknowledged, and the client drops ids it has already seen.
    """
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        await (await signed_up(relay.url, "alice")).close()
        await (await signed_up(relay.url, "bob")).close()
        delivered: list[str] = []
        for round_ in range(3):
            accepted: list[str] = []
            await _send_until_killed(relay.url, relay, accepted, f"r{round_}")
            relay.start()
            bob = await logged_in(relay.url, "bob")
            seen: set[str] = set(delivered)
            fresh: list[str] = []
            try:
                while True:
                    push = await bob.next_push("deliver", timeout=1.5)
                    for env in push["envelopes"]:
                        if env["eid"] not in seen:
                            seen.add(env["eid"])
                            fresh.append(env["eid"])
                    await bob.send(
                        {"type": "ack", "rid": 0, "sids": [e["sid"] for e in push["envelopes"]]}
                    )
            except TimeoutError:
                pass
            await bob.close()
            assert set(accepted) <= set(fresh), set(accepted) - set(fresh)
            assert len(fresh) == len(set(fresh))
            delivered += fresh
            await asyncio.sleep(0)
    finally:
        relay.kill()
