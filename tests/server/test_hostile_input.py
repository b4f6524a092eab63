"""Hostile input: each gets a clear error or a clean close, and others keep being served."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from securechat.server.app import RelayServer
from tests.conftest import fast_config
from tests.wire import Wire, b64, logged_in, signed_up


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "teleport", "rid": 1}', "unknown frame type"),
        ('{"type": "login", "rid": 1}', "missing required field"),
        ('{"type": "login", "rid": 1, "username": 5, "password": "x"}', "Expected `str`"),
        (
            '{"type": "login", "rid": 1, "username": "alice", "password": "x", "admin": true}',
            "unknown field",
        ),
        ("[1, 2, 3]", "JSON object"),
        ('{"type": "send", "rid": 1, "to": "bob", "eid": "x", "body": "!!!"}', "base64"),
        ('{"type": "login", "rid": -5, "username": "alice", "password": "x"}', "invalid frame"),
        (
            '{"type": "login", "rid": 1, "username": "' + "a" * 5000 + '", "password": "x"}',
            "invalid frame",
        ),
    ],
)
async def test_malformed_frames_get_bad_request(relay_url: str, raw: str, fragment: str) -> None:
    """The error names the problem and the connection stays usable."""
    wire = await Wire.open(relay_url)
    await wire.send(raw)
    error = await wire.recv()
    assert error["type"] == "error" and error["code"] == "bad_request"
    assert fragment in error["message"]
    still = await wire.call("resume", token="nope")
    assert still["code"] == "unauthorized"


async def test_binary_garbage_gets_an_error(relay_url: str) -> None:
    """Binary frames are parsed like text and refused the same way."""
    wire = await Wire.open(relay_url)
    await wire.send(bytes(range(256)) * 4)
    assert (await wire.recv())["code"] == "bad_request"


async def test_requests_before_login_are_unauthorized(relay_url: str) -> None:
    """Nothing but account frames work without a session."""
    wire = await Wire.open(relay_url)
    for frame in [
        {"type": "send", "rid": 1, "to": "bob", "eid": "x", "body": b64(b"x")},
        {"type": "fetch_bundle", "rid": 2, "user": "bob"},
        {"type": "watch", "rid": 3, "users": ["bob"]},
    ]:
        await wire.send(frame)
        answer = await wire.recv()
        assert answer["code"] == "unauthorized" and answer["rid"] == frame["rid"]


async def test_a_client_cannot_send_as_someone_else(relay_url: str) -> None:
    """A `sender` field is refused; the relay stamps the authenticated name."""
    mallory = await signed_up(relay_url, "mallory")
    bob = await signed_up(relay_url, "bob")
    forged = await mallory.call("send", to="bob", eid="f", body=b64(b"x"), sender="alice")
    assert forged["code"] == "bad_request"
    await mallory.call("send", to="bob", eid="g", body=b64(b"x"))
    [env] = (await bob.next_push("deliver"))["envelopes"]
    assert env["sender"] == "mallory"


async def test_acknowledging_another_users_envelopes_deletes_nothing(relay: RelayServer) -> None:
    """Acks only touch the caller's own queue."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    mallory = await signed_up(url, "mallory")
    bob = await signed_up(url, "bob")
    await bob.close()
    await alice.call("send", to="bob", eid="secret", body=b64(b"x"))
    await mallory.send({"type": "ack", "rid": 0, "sids": list(range(1, 50))})
    await mallory.call("watch", users=[])
    await relay.relay.drain()
    assert await relay.store.queue_usage("bob") == (1, 1)


async def test_envelopes_to_names_without_an_account_are_refused(relay: RelayServer) -> None:
    """Made-up recipients cannot be used to fill the relay's disk; a real one still works."""
    url = f"ws://127.0.0.1:{relay.port}"
    mallory = await signed_up(url, "mallory")
    for i in range(50):
        answer = await mallory.call("send", to=f"nobody{i}", eid=f"e{i}", body=b64(b"x" * 1000))
        assert (answer["code"], answer["message"]) == ("not_found", f"no account named 'nobody{i}'")
    await relay.relay.drain()
    assert (await relay.store.stats())["envelopes"] == 0
    await signed_up(url, "nobody0")
    later = await mallory.call("send", to="nobody0", eid="late", body=b64(b"x"))
    assert later["type"] == "accepted"


async def test_oversized_frame_closes_the_connection_only(relay_url: str) -> None:
    """A 100 MB frame is cut off at 1 MiB; other users carry on."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    attacker = await Wire.open(relay_url)
    with pytest.raises(ConnectionClosed):
        await attacker.send("x" * (100 * 1024 * 1024))
        await attacker.recv()
    assert attacker.ws.close_code == 1009
    assert (await alice.call("send", to="bob", eid="ok", body=b64(b"x")))["type"] == "accepted"
    assert (await bob.next_push("deliver"))["envelopes"][0]["eid"] == "ok"


async def test_frame_flood_is_rate_limited_and_others_are_unaffected(relay_url: str) -> None:
    """10,000 frames at once: refusals, then a close; the relay keeps serving."""
    alice = await signed_up(relay_url, "alice")
    await signed_up(relay_url, "bob")
    flooder = await signed_up(relay_url, "flooder")
    frame = json.dumps({"type": "watch", "rid": 7, "users": []})
    try:
        for _ in range(10_000):
            await flooder.send(frame)
    except ConnectionClosed:
        pass
    codes: set[str] = set()
    try:
        while True:
            answer = await flooder.recv(timeout=5)
            codes.add(answer.get("code", answer["type"]))
    except (ConnectionClosed, TimeoutError):
        pass
    assert "rate_limited" in codes
    assert (await alice.call("send", to="bob", eid="after", body=b64(b"x")))["type"] == "accepted"


async def test_handshake_that_never_finishes_is_dropped(tmp_path) -> None:
    """A TCP connection that never upgrades is closed after the open timeout."""
    server = RelayServer(fast_config(tmp_path, open_timeout=0.5))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        assert data == b"" or b"HTTP/1.1" in data
        writer.close()
    finally:
        await server.stop()


async def test_connection_that_never_logs_in_is_closed(tmp_path) -> None:
    """Unauthenticated sockets cannot be parked forever."""
    server = RelayServer(fast_config(tmp_path, auth_timeout=0.3))
    await server.start()
    try:
        wire = await Wire.open(f"ws://127.0.0.1:{server.port}")
        with pytest.raises(ConnectionClosed):
            await wire.recv(timeout=5)
        assert wire.ws.close_code == 1008
    finally:
        await server.stop()


async def test_health_endpoint(relay_url: str) -> None:
    """Load balancers can probe the relay over plain HTTP on the client port."""
    import httpx

    async with httpx.AsyncClient() as http:
        health = await http.get(relay_url.replace("ws://", "http://") + "/healthz")
    assert health.status_code == 200 and health.text == "ok\n"


async def test_logged_in_user_data_survives_a_hostile_neighbour(relay_url: str) -> None:
    """After all of the above from one client, queued data for others is intact."""
    alice = await signed_up(relay_url, "alice")
    bob = await signed_up(relay_url, "bob")
    await bob.close()
    await alice.call("send", to="bob", eid="keep", body=b64(b"x"))
    hostile = await Wire.open(relay_url)
    for raw in ["{", "[]", '{"type":"ack","rid":0,"sids":[1]}', "\x00" * 100]:
        await hostile.send(raw)
    bob = await logged_in(relay_url, "bob")
    assert (await bob.next_push("deliver"))["envelopes"][0]["eid"] == "keep"
