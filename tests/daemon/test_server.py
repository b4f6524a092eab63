"""The daemon shell on a real relay: bad input, slow clients, socket permissions, TCP."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.daemon import rpc
from securechat.daemon.main import parse_tcp
from securechat.daemon.server import Daemon, listen_tcp, listen_unix, token_from_file
from securechat.errors import ClientErrorCode, ConfigError
from tests.client.helpers import clients, secure
from tests.daemon.helpers import RpcClient

TOKEN = "a-token-of-thirty-two-characters"


@dataclass
class Setup:
    alice: ChatClient
    bob: ChatClient
    daemon: Daemon
    path: Path


@pytest.fixture
async def setup(relay_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    """alice and bob with a session; bob served by a daemon on a socket in tmp_path."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        daemon = Daemon(bob, write_timeout=0.5)
        daemon.start()
        path = tmp_path / "run" / "bob.sock"
        server = await listen_unix(daemon, path)
        try:
            yield Setup(alice, bob, daemon, path)
        finally:
            server.close()
            await daemon.close()


async def test_bad_input_is_answered_and_the_connection_keeps_serving(setup: Setup) -> None:
    """Malformed JSON, unknown methods and wrong params each get their code; the next call works."""
    client = await RpcClient.unix(setup.path)
    await client.send_line(b"{oops\n")
    assert (await client.read())["error"]["code"] == rpc.PARSE_ERROR
    unknown = await client.request("frobnicate")
    assert unknown["error"]["code"] == rpc.METHOD_NOT_FOUND
    wrong = await client.request("send", recipient=5, message="hi")
    assert wrong["error"]["code"] == rpc.INVALID_PARAMS
    refused = await client.request("send", recipient="carol", message="hi")
    assert refused["error"]["code"] == rpc.REFUSED
    assert refused["error"]["data"]["exit_code"] == 1
    assert refused["error"]["data"]["reason"] == ClientErrorCode.NO_SESSION
    assert "no secure session with carol" in refused["error"]["message"]
    assert (await client.call("version"))["version"]
    await client.close()


async def test_a_request_too_large_is_refused_and_only_that_client_dropped(setup: Setup) -> None:
    """2 MiB in one line: an error, then that connection ends; another client is unaffected."""
    other = await RpcClient.unix(setup.path)
    big = await RpcClient.unix(setup.path)
    body = {"jsonrpc": "2.0", "id": 1, "method": "send", "params": {"message": "x" * (2 << 20)}}
    big.writer.write(json.dumps(body).encode() + b"\n")
    answer = await big.read()
    assert answer["error"]["code"] == rpc.INVALID_REQUEST and answer["id"] is None
    with pytest.raises((EOFError, ConnectionError)):
        await big.read()
    assert (await other.call("version"))["version"]
    await other.close()


async def test_a_client_that_never_reads_is_dropped_and_others_get_everything(
    setup: Setup,
) -> None:
    """A stalled subscriber costs no memory and no messages: it is dropped, the other is served."""
    # A bare socket: an asyncio reader would buffer megabytes on the client's behalf.
    stalled = socket.socket(socket.AF_UNIX)
    stalled.connect(str(setup.path))
    stalled.sendall(b'{"jsonrpc":"2.0","id":1,"method":"subscribe"}\n')
    reader = await RpcClient.unix(setup.path)
    await reader.call("subscribe")
    texts = [f"{i} " + "y" * 60_000 for i in range(25)]
    for text in texts:
        await setup.alice.send_text("bob", text)
    received = await reader.messages(len(texts))
    assert [m["text"] for m in received] == texts
    for _ in range(100):
        if len(setup.daemon.connections) == 1:
            break
        await asyncio.sleep(0.1)
    assert len(setup.daemon.connections) == 1
    await reader.close()
    stalled.close()


async def test_subscribe_replays_from_the_cursor(setup: Setup) -> None:
    """What arrived before `subscribe` (or while away) comes from the vault, after the cursor."""
    for i in range(3):
        await setup.alice.send_text("bob", f"early {i}")
    first = await RpcClient.unix(setup.path)
    await first.call("subscribe")
    early = await first.messages(3)
    assert [m["text"] for m in early] == ["early 0", "early 1", "early 2"]
    await first.close()
    await setup.alice.send_text("bob", "while away")
    second = await RpcClient.unix(setup.path)
    await second.call("subscribe", after=early[1]["id"])
    assert [m["text"] for m in await second.messages(2)] == ["early 2", "while away"]
    history = await second.call("history", peer="alice", limit=2)
    assert [m["text"] for m in history["messages"]] == ["early 2", "while away"]
    contacts = await second.call("listContacts")
    assert contacts[0]["peer"] == "alice" and contacts[0]["state"] == "active"
    await second.close()


async def test_the_socket_is_private_and_a_live_one_is_not_taken_over(setup: Setup) -> None:
    mode = setup.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(setup.path.parent.stat().st_mode) == 0o700
    with pytest.raises(ConfigError, match="already listens"):
        await listen_unix(setup.daemon, setup.path)


async def test_a_stale_socket_is_replaced(setup: Setup, tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))
    server = await listen_unix(setup.daemon, stale)
    client = await RpcClient.unix(stale)
    assert (await client.call("version"))["version"]
    await client.close()
    server.close()


async def test_tcp_needs_the_token(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `auth` nothing runs; a wrong token ends the connection; the right one works.

    Neither token, nor a message sent through the daemon, reaches the log."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError):
        await listen_tcp(setup.daemon, "127.0.0.1", 0)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        token_from_file(token_file)
    token_file.chmod(0o600)
    daemon = Daemon(setup.bob, token=token_from_file(token_file))
    server = await listen_tcp(daemon, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    client = RpcClient(*await asyncio.open_connection("127.0.0.1", port))
    refused = await client.request("version")
    assert refused["error"]["code"] == rpc.LOCKED
    assert (await client.request("auth", token="wrong-token"))["error"]["code"] == rpc.LOCKED
    with pytest.raises((EOFError, ConnectionError)):
        await client.read()

    client = RpcClient(*await asyncio.open_connection("127.0.0.1", port))
    assert await client.call("auth", token=TOKEN) == {}
    assert (await client.call("version"))["version"]
    assert "id" in await client.call("send", recipient="alice", message="tcp secret text")
    await client.close()
    server.close()
    for secret in (TOKEN, "wrong-token", "tcp secret text"):
        assert secret not in caplog.text
    assert "dropped a client: wrong token" in caplog.text


@pytest.mark.parametrize("value", ["0.0.0.0:8080", "192.168.1.2:80", "localhost:80", "::1"])
def test_tcp_listens_on_loopback_addresses_only(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_tcp(value)
    assert parse_tcp("127.0.0.1:7583") == ("127.0.0.1", 7583)
    assert parse_tcp("[::1]:7583") == ("::1", 7583)


def test_the_default_socket_lives_in_the_runtime_dir(tmp_path: Path) -> None:
    from securechat import paths

    os.environ["SECURECHAT_RUNTIME_DIR"] = str(tmp_path / "rt")
    try:
        assert paths.daemon_socket("bob") == tmp_path / "rt" / "bob.sock"
        assert stat.S_IMODE((tmp_path / "rt").stat().st_mode) == 0o700
    finally:
        del os.environ["SECURECHAT_RUNTIME_DIR"]
