"""How the relay reads: each message handled in the callback that read it, in order, even
behind a frame that must wait (a login's bcrypt), fragmented or early."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from securechat.server.app import RelayServer
from securechat.server.connection import EARLY_MESSAGES_HELD, INBOUND_HELD, Connection
from tests.wire import PASSWORD, Wire, b64, signed_up


def pipelined(wire: Wire, frames: list[dict[str, Any]]) -> None:
    """Frames in one TCP write, so the relay reads them in one loop turn."""
    for frame in frames:
        wire.ws.protocol.send_text(json.dumps(frame).encode())
    wire.ws.transport.write(b"".join(wire.ws.protocol.data_to_send()))


def sends(to: str, count: int, first_rid: int = 2) -> list[dict[str, Any]]:
    return [
        {"type": "send", "rid": rid, "to": to, "eid": f"e{rid}", "body": b64(b"x")}
        for rid in range(first_rid, first_rid + count)
    ]


async def answers(wire: Wire, count: int) -> list[dict[str, Any]]:
    return [await wire.recv() for _ in range(count)]


async def test_frames_behind_a_login_wait_for_it_and_keep_their_order(
    relay: RelayServer, relay_url: str
) -> None:
    """The login goes on in a task (bcrypt in the pool); more sends than `INBOUND_HELD`
    arrive behind it in the same packet. Each must be handled after the login (else:
    "log in first") and in order, and reading must resume once they are."""
    await signed_up(relay_url, "bob")
    await (await signed_up(relay_url, "alice")).close()
    wire = await Wire.open(relay_url)
    count = INBOUND_HELD * 2
    login = {"type": "login", "rid": 1, "username": "alice", "password": PASSWORD}
    pipelined(wire, [login, *sends("bob", count)])
    got = await answers(wire, count + 1)
    assert got[0]["type"] == "session", got[0]
    assert [(f["type"], f["rid"]) for f in got[1:]] == [
        ("accepted", rid) for rid in range(2, count + 2)
    ]
    assert (await wire.call("send", to="bob", eid="after", body=b64(b"x")))["type"] == "accepted"


async def test_a_connection_gone_during_its_login_is_not_left_online(
    relay: RelayServer, relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login ends after the client hung up: the relay must not count it online."""
    await (await signed_up(relay_url, "alice")).close()
    accounts = relay.dispatcher.accounts
    login = accounts.login

    async def slow_login(*args: Any) -> Any:
        await asyncio.sleep(0.3)
        return await login(*args)

    monkeypatch.setattr(accounts, "login", slow_login)
    wire = await Wire.open(relay_url)
    pipelined(wire, [{"type": "login", "rid": 1, "username": "alice", "password": PASSWORD}])
    wire.ws.transport.abort()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not relay._connections:
            break
    await asyncio.sleep(0.5)  # the login's end
    assert not relay._connections
    assert relay.relay.connections_of("alice") == 0


async def test_a_fragmented_message_is_put_together(relay_url: str) -> None:
    wire = await signed_up(relay_url, "alice")
    await signed_up(relay_url, "bob")
    text = json.dumps({"type": "send", "rid": 9, "to": "bob", "eid": "frag", "body": b64(b"x")})
    await wire.ws.send([text[:7], text[7:20], text[20:]])
    answer = await wire.recv()
    assert (answer["type"], answer["rid"]) == ("accepted", 9)


async def test_text_that_is_not_utf8_is_refused_and_the_connection_lives(relay_url: str) -> None:
    wire = await signed_up(relay_url, "alice")
    wire.ws.protocol.send_text(b'{"type":"watch","rid":4,"users":["\xff"]}')
    wire.ws.transport.write(b"".join(wire.ws.protocol.data_to_send()))
    answer = await wire.recv()
    assert (answer["type"], answer["code"], answer["rid"]) == ("error", "bad_request", 4)
    assert (await wire.call("watch", users=[]))["type"] == "presence_list"


async def test_messages_read_before_the_connection_takes_over_are_handled(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client may write before the relay has set its connection up: held, then handled
    in order, more of them than the socket holds before it stops reading."""
    await signed_up(relay_url, "bob")
    await (await signed_up(relay_url, "alice")).close()
    serve = Connection.serve

    async def late_serve(self: Connection) -> None:
        await asyncio.sleep(0.3)
        await serve(self)

    monkeypatch.setattr(Connection, "serve", late_serve)
    wire = await Wire.open(relay_url)
    count = EARLY_MESSAGES_HELD * 2
    login = {"type": "login", "rid": 1, "username": "alice", "password": PASSWORD}
    pipelined(wire, [login, *sends("bob", count)])
    got = await answers(wire, count + 1)
    assert [f["type"] for f in got] == ["session"] + ["accepted"] * count
    assert [f["rid"] for f in got[1:]] == list(range(2, count + 2))
