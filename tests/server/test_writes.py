"""How the relay writes: one turn's frames leave together, stalled readers are waited for,
file bytes travel raw in binary messages."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from securechat.protocol import frames as F
from securechat.protocol.codec import encode_bulk, parse_server_bulk
from securechat.protocol.limits import SUBPROTOCOL
from securechat.server.app import RelayServer
from securechat.server.connection import RelaySocket
from tests.conftest import fast_config
from tests.wire import PASSWORD, Wire, b64, signed_up


def send_pipelined(wire: Wire, to: str, eids: list[str]) -> None:
    """`send` frames in one TCP write, so the relay reads them in one loop turn."""
    for eid in eids:
        wire.rid += 1
        frame = {"type": "send", "rid": wire.rid, "to": to, "eid": eid, "body": b64(b"x")}
        wire.ws.protocol.send_text(json.dumps(frame).encode())
    wire.ws.transport.write(b"".join(wire.ws.protocol.data_to_send()))


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """Every batch of frames the relay handed to a socket in one write."""
    seen: list[list[dict[str, Any]]] = []
    original = RelaySocket.write_frames

    def spy(self: RelaySocket, frames: list[str | bytes]) -> bool:
        seen.append([json.loads(f) for f in frames if isinstance(f, str)])
        return original(self, frames)

    monkeypatch.setattr(RelaySocket, "write_frames", spy)
    return seen


async def test_pipelined_sends_are_answered_in_one_write(
    relay_url: str, writes: list[list[dict[str, Any]]]
) -> None:
    """Three sends read in one turn: one write of three `accepted`, one `deliver` of three."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    send_pipelined(alice, "bob", [f"m{i}" for i in range(3)])

    answers = [await alice.recv() for _ in range(3)]
    assert [a["type"] for a in answers] == ["accepted"] * 3
    assert [a["eid"] for a in answers] == ["m0", "m1", "m2"]
    deliver = await bob.next_push("deliver")
    assert [e["eid"] for e in deliver["envelopes"]] == ["m0", "m1", "m2"]
    accepted_together = [w for w in writes if [f["type"] for f in w] == ["accepted"] * 3]
    assert len(accepted_together) == 1


async def test_reader_that_stalls_gets_everything_in_order_once_it_reads(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flow control: the relay stops writing to a full socket and resumes where it was."""
    waited = 0
    original = RelaySocket.drain

    async def counting(self: RelaySocket) -> None:
        nonlocal waited
        waited += self.paused
        await original(self)

    monkeypatch.setattr(RelaySocket, "drain", counting)
    alice = await signed_up(relay_url, "alice")
    await (await signed_up(relay_url, "bob")).close()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(relay_url.rsplit(":", 1)[1])))
    ws = await connect(
        relay_url,
        sock=sock,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_queue=1,
        max_size=None,
    )
    bob = Wire(ws)
    assert (await bob.call("login", username="bob", password=PASSWORD))["type"] == "session"
    waited = 0

    body = b64(bytes(200_000))
    count = 40
    for i in range(count):
        answer = await alice.call("send", to="bob", eid=f"m{i:02}", body=body)
        assert answer["type"] == "accepted", answer
    await asyncio.sleep(0.2)
    assert waited > 0, "the relay never had to wait for the stalled socket"

    got: list[str] = []
    sids: list[int] = []
    while len(got) < count:
        for env in (await bob.next_push("deliver"))["envelopes"]:
            got.append(env["eid"])
            sids.append(env["sid"])
    assert got == [f"m{i:02}" for i in range(count)]
    assert len(set(sids)) == count
    # A reader with max_queue=1 reads no close frame while frames wait: hang up hard.
    ws.transport.abort()
    await alice.close()


async def test_file_bytes_travel_raw_in_binary_messages_and_as_base64_on_request(
    relay_url: str,
) -> None:
    """Uploads and downloads as binary messages; a text `file_get` still gets base64."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    data = bytes(range(256)) * 200
    begun = await alice.call("file_begin", size=len(data) * 2, recipients=["bob"])
    file_id = begun["file_id"]

    for index in range(2):
        alice.rid += 1
        await alice.ws.send(
            encode_bulk(F.FileChunk(rid=alice.rid, file_id=file_id, index=index, data=data))
        )
        ready = await alice.recv()
        assert ready["type"] == "file_ready" and ready["next_index"] == index + 1
    assert ready["complete"] is True

    bob.rid += 1
    await bob.send(
        {"type": "file_get", "rid": bob.rid, "file_id": file_id, "index": 1, "binary": True}
    )
    raw = await bob.ws.recv()
    assert isinstance(raw, bytes)
    assert parse_server_bulk(raw) == F.FileData(
        rid=bob.rid, file_id=file_id, index=1, data=data, last=True
    )
    text = await bob.call("file_get", file_id=file_id, index=0)
    assert text["type"] == "file_data" and base64.b64decode(text["data"]) == data


async def test_a_binary_message_that_is_not_a_chunk_is_refused_and_the_connection_lives(
    relay_url: str,
) -> None:
    alice = await signed_up(relay_url, "alice")
    head = json.dumps({"type": "watch", "rid": 9, "users": []}).encode()
    await alice.ws.send(len(head).to_bytes(4, "big") + head)
    error = await alice.recv()
    assert error["rid"] == 9 and error["code"] == "bad_request"
    assert "only file_chunk" in error["message"]
    assert (await alice.call("watch", users=[]))["type"] == "presence_list"


async def test_without_a_commit_delay_every_turn_commits_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    server = RelayServer(fast_config(tmp_path / "relay", commit_delay=0.0))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        alice = await signed_up(url, "alice")
        bob = await signed_up(url, "bob")
        for i in range(20):
            answer = await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x"))
            assert answer["type"] == "accepted"
        got: list[str] = []
        while len(got) < 20:
            got += [e["eid"] for e in (await bob.next_push("deliver"))["envelopes"]]
        assert got == [f"m{i}" for i in range(20)]
    finally:
        await server.stop()


async def test_live_envelopes_during_a_backlog_read_arrive_once_and_in_order(
    relay_url: str,
) -> None:
    """Live deliveries must wait for the stored backlog and never repeat it."""
    alice = await signed_up(relay_url, "alice")
    await (await signed_up(relay_url, "bob")).close()
    queued = 250
    for start in range(0, queued, 50):
        send_pipelined(alice, "bob", [f"m{i:04}" for i in range(start, start + 50)])
        for _ in range(50):
            assert (await alice.recv())["type"] == "accepted"

    bob = await Wire.open(relay_url)
    bob.rid += 1
    await bob.send({"type": "login", "rid": bob.rid, "username": "bob", "password": PASSWORD})
    live = 100  # with the backlog, under the frame burst of 400
    send_pipelined(alice, "bob", [f"m{i:04}" for i in range(queued, queued + live)])

    got: list[str] = []
    sids: list[int] = []
    while len(got) < queued + live:
        frame = await bob.recv()
        if frame["type"] == "deliver":
            got += [e["eid"] for e in frame["envelopes"]]
            sids += [e["sid"] for e in frame["envelopes"]]
    assert got == [f"m{i:04}" for i in range(queued + live)]
    assert sids == sorted(set(sids))
    for _ in range(live):
        assert (await alice.recv())["type"] == "accepted"
    await bob.close()
    await alice.close()
