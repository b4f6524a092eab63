"""A device that logs in again ends the relay session it held before."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.server import connection as server_connection
from securechat.server.app import RelayServer
from securechat.server.passwords import token_hash
from tests.client.helpers import PASSWORD


async def _registered(url: str, root: Path) -> str:
    """Registers alice in `root` and returns the session token the vault keeps."""
    client = ChatClient(url, root, reconnect=False)
    try:
        await client.connect()
        await client.register("alice", PASSWORD)
        token = client.relay.token
    finally:
        await client.close()
    assert token is not None
    return token


async def _login_again(url: str, root: Path) -> str:
    client = ChatClient(url, root, reconnect=False)
    try:
        await client.connect()
        await client.login("alice", PASSWORD)
        token = client.relay.token
    finally:
        await client.close()
    assert token is not None
    return token


async def test_logging_in_again_revokes_the_devices_previous_session(
    relay: RelayServer, tmp_path: Path
) -> None:
    """The vault's old token is sent as `replaces` and is dead afterwards."""
    url = f"ws://127.0.0.1:{relay.port}"
    first = await _registered(url, tmp_path / "alice")
    second = await _login_again(url, tmp_path / "alice")
    assert second != first
    assert await relay.store.get_session(token_hash(first)) is None
    assert await relay.store.get_session(token_hash(second)) is not None


async def test_a_relay_from_before_replaces_still_lets_the_client_in(
    relay: RelayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a relay refuses the field; the client logs in without it and the old token lives."""
    real = server_connection.parse_client_frame

    def old_parser(data: bytes | str, **kwargs: int) -> F.ClientFrame:
        if '"replaces"' in (data if isinstance(data, str) else data.decode(errors="replace")):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "invalid frame: Object contains unknown field `replaces`"
            )
        return real(data, **kwargs)

    url = f"ws://127.0.0.1:{relay.port}"
    first = await _registered(url, tmp_path / "alice")
    monkeypatch.setattr(server_connection, "parse_client_frame", old_parser)
    second = await _login_again(url, tmp_path / "alice")
    assert second != first
    assert await relay.store.get_session(token_hash(first)) is not None


def test_a_login_without_replaces_is_the_first_v1_frame() -> None:
    """Old relays see exactly the bytes they always did."""
    from securechat.protocol.codec import encode_str

    frame = F.Login(rid=1, username="alice", password=PASSWORD)
    assert encode_str(frame) == (
        '{"type":"login","username":"alice","password":"correct horse battery","rid":1}'
    )
