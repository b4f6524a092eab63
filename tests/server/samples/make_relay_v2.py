"""Writes `relay-v2/`: a relay data directory as the relay of schema 2 left it.

Run once, against the code from before the store's schema 3 (the commit before
"store: inboxes"), with this checkout's tests on the path:

    mkdir /tmp/old && git archive <that commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src:. .venv/bin/python tests/server/samples/make_relay_v2.py

It drives a real relay over the wire, so the password hashes, prekeys, queued
envelopes, contacts and the file are what a relay of that schema wrote. Kept,
not regenerated: the test reads it to prove an upgrade keeps everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import fast_config
from tests.wire import b64, signed_up

from securechat.protocol import frames as F
from securechat.protocol.codec import encode_bulk
from securechat.server.app import RelayServer

OUT = Path(__file__).parent / "relay-v2"
FILE_DATA = bytes(range(256)) * 4


async def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    server = RelayServer(fast_config(OUT))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        alice = await signed_up(url, "alice")
        bob = await signed_up(url, "bob")
        carol = await signed_up(url, "carol")
        for wire, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            answer = await wire.call(
                "publish_keys",
                identity=b64(f"ik-{name}".encode()),
                signed_prekey=b64(f"spk-{name}".encode()),
                kem_prekey=b64(f"kem-{name}".encode()),
                one_time_prekeys=[b64(f"otpk-{name}-{i}".encode()) for i in range(3)],
                one_time_kem_prekeys=[b64(f"otkem-{name}-{i}".encode()) for i in range(2)],
            )
            assert answer["type"] == "done", answer
        await bob.close()
        await carol.close()
        for i in range(3):
            answer = await alice.call("send", to="bob", eid=f"a-b-{i}", body=b64(f"m{i}".encode()))
            assert answer["type"] == "accepted", answer
        answer = await alice.call("send", to="carol", eid="a-c-0", body=b64(b"hi carol"))
        assert answer["type"] == "accepted", answer
        begun = await alice.call("file_begin", size=len(FILE_DATA), recipients=["bob"])
        alice.rid += 1
        await alice.ws.send(
            encode_bulk(
                F.FileChunk(rid=alice.rid, file_id=begun["file_id"], index=0, data=FILE_DATA)
            )
        )
        ready = await alice.recv()
        assert ready["complete"] is True, ready
        await alice.close()
    finally:
        await server.stop()
    with contextlib.closing(sqlite3.connect(OUT / "relay.sqlite3")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    for leftover in OUT.glob("relay.sqlite3-*"):
        leftover.unlink()
    print(f"file id {begun['file_id']}")


if __name__ == "__main__":
    asyncio.run(main())
