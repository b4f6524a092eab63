"""Envelopes near the body limit piling up for an offline user, read by the real client."""

from __future__ import annotations

import os

from securechat.client.relay_client import RelayClient
from securechat.server.app import RelayServer
from tests.faults.harness import Application, MemoryOutbox, eventually
from tests.wire import PASSWORD, b64, signed_up


async def test_backlog_of_large_envelopes_reaches_the_client(relay: RelayServer) -> None:
    """Twenty 64 KiB envelopes (1.7 MiB of base64) queued while offline all arrive."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    await (await signed_up(url, "bob")).close()
    for i in range(20):
        answer = await alice.call("send", to="bob", eid=f"m{i}", body=b64(os.urandom(64 * 1024)))
        assert answer["type"] == "accepted"
    app = Application("bob")
    bob = RelayClient(url, MemoryOutbox(), on_envelope=app.on_envelope, backoff_base=0.05)
    try:
        await bob.connect()
        await bob.login("bob", PASSWORD)
        assert await eventually(lambda: len(app.received) == 20, timeout=3), len(app.received)
    finally:
        await bob.close()
