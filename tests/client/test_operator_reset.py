"""An operator reset changes the password on the relay only: no history is lost over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.client.events import ConnectionChanged, ConnectionState, MessageReceived
from securechat.crypto.errors import WrongPassword
from securechat.errors import ServerRejected, VaultBehind
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD, clients, drain, secure, wait_for

NEW_PASSWORD = "a brand new passphrase"


async def _history_with_bob(url: str, root: Path) -> None:
    """alice's vault holds one message to bob."""
    async with clients(url, root, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        await alice.send_text("bob", "kept across the reset")
        await wait_for(bob, MessageReceived, text="kept across the reset")


async def _client(url: str, root: Path) -> ChatClient:
    client = ChatClient(url, root / "alice", reconnect=False)
    await client.connect()
    return client


async def test_the_new_password_asks_for_the_previous_one_then_rewraps(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """After `reset-token`, the new password is recognised and the previous one opens the vault."""
    await _history_with_bob(relay_url, tmp_path)
    token = await relay.accounts.issue_reset_token("alice")
    client = await _client(relay_url, tmp_path)
    try:
        await client.reset_password("alice", token, NEW_PASSWORD)
    finally:
        await client.close()

    client = await _client(relay_url, tmp_path)
    try:
        with pytest.raises(VaultBehind, match="previous password or your recovery code"):
            await client.login("alice", NEW_PASSWORD)
    finally:
        await client.close()

    client = await _client(relay_url, tmp_path)
    try:
        await client.login("alice", NEW_PASSWORD, previous=PASSWORD)
        assert [m.record.text for m in client.history("bob")] == ["kept across the reset"]
    finally:
        await client.close()

    # Re-wrapped: the new password alone opens the vault from now on, the old one does not.
    client = await _client(relay_url, tmp_path)
    try:
        await client.login("alice", NEW_PASSWORD)
        assert len(client.history("bob")) == 1
    finally:
        await client.close()
    client = await _client(relay_url, tmp_path)
    try:
        with pytest.raises(WrongPassword):
            await client.login("alice", PASSWORD)
    finally:
        await client.close()


async def test_the_recovery_code_also_opens_a_vault_left_behind(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """The recovery code works as `previous` (via unlock_and_resume, as the CLI calls it)."""
    client = ChatClient(relay_url, tmp_path / "alice", reconnect=False)
    await client.connect()
    code = await client.register("alice", PASSWORD)
    await client.close()
    token = await relay.accounts.issue_reset_token("alice")
    client = await _client(relay_url, tmp_path)
    await client.reset_password("alice", token, NEW_PASSWORD)
    await client.close()

    client = await _client(relay_url, tmp_path)
    try:
        await client.unlock_and_resume("alice", NEW_PASSWORD, previous=code)
        assert client.relay.connected
    finally:
        await client.close()
    client = await _client(relay_url, tmp_path)
    try:
        await client.unlock_and_resume("alice", NEW_PASSWORD)
    finally:
        await client.close()


async def test_a_wrong_password_is_still_just_wrong(relay_url: str, tmp_path: Path) -> None:
    """The relay refuses it too, so nobody is asked for a previous password."""
    client = ChatClient(relay_url, tmp_path / "alice", reconnect=False)
    await client.connect()
    await client.register("alice", PASSWORD)
    await client.close()
    client = await _client(relay_url, tmp_path)
    try:
        with pytest.raises(WrongPassword):
            await client.login("alice", "not the password at all")
    finally:
        await client.close()


async def test_a_wrong_previous_password_changes_nothing(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """Neither secret opens the vault: it says so, and the previous password still works."""
    client = ChatClient(relay_url, tmp_path / "alice", reconnect=False)
    await client.connect()
    await client.register("alice", PASSWORD)
    await client.close()
    token = await relay.accounts.issue_reset_token("alice")
    client = await _client(relay_url, tmp_path)
    await client.reset_password("alice", token, NEW_PASSWORD)
    await client.close()
    client = await _client(relay_url, tmp_path)
    try:
        with pytest.raises(WrongPassword, match="Neither"):
            await client.login("alice", NEW_PASSWORD, previous="guessed wrong again")
    finally:
        await client.close()
    client = await _client(relay_url, tmp_path)
    try:
        await client.login("alice", NEW_PASSWORD, previous=PASSWORD)
    finally:
        await client.close()


async def test_a_reset_while_signed_in_rewraps_at_once_and_keeps_the_session(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """The open vault takes the new password and a new session replaces the ended one."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        token = await relay.accounts.issue_reset_token("alice")
        drain(alice)
        assert await alice.reset_password("alice", token, NEW_PASSWORD) is None
        assert alice.relay.connected
        assert not any(
            isinstance(e, ConnectionChanged) and e.state == ConnectionState.CLOSED
            for e in drain(alice)
        )
        await alice.send_text("bob", "after the reset")
        await wait_for(bob, MessageReceived, text="after the reset")
    client = await _client(relay_url, tmp_path)
    try:
        await client.login("alice", NEW_PASSWORD)
    finally:
        await client.close()


async def test_a_refused_reset_while_signed_in_keeps_the_session(
    relay_url: str, tmp_path: Path
) -> None:
    """A bad token changes nothing: same password, and the client still reconnects."""
    async with clients(relay_url, tmp_path, "alice") as (alice,):
        with pytest.raises(ServerRejected):
            await alice.reset_password("alice", "op-not-a-real-token", NEW_PASSWORD)
        assert alice.relay._supervisor is not None
    client = await _client(relay_url, tmp_path)
    try:
        await client.login("alice", PASSWORD)
    finally:
        await client.close()
