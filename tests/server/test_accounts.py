"""Accounts over the wire: registration rules, login, sessions, reset, deletion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from securechat.server.app import RelayServer
from tests.wire import PASSWORD, Wire, b64, logged_in, signed_up


async def test_register_rejects_weak_passwords_and_bad_names(relay_url: str) -> None:
    """Each refusal says what to change."""
    wire = await Wire.open(relay_url)
    token = b64(os.urandom(32))
    short = await wire.call("register", username="alice", password="short", recovery_token=token)
    assert short["code"] == "bad_request" and "at least 10" in short["message"]
    common = await wire.call(
        "register", username="alice", password="password123", recovery_token=token
    )
    assert "commonly used" in common["message"]
    bad_name = await wire.call("register", username="A!", password=PASSWORD, recovery_token=token)
    assert bad_name["code"] == "bad_request"


async def test_usernames_are_unique_ignoring_case(relay_url: str) -> None:
    """`Alice` cannot be registered next to `alice`."""
    await signed_up(relay_url, "alice")
    wire = await Wire.open(relay_url)
    again = await wire.call(
        "register", username="alice", password=PASSWORD, recovery_token=b64(os.urandom(32))
    )
    assert again["code"] == "conflict"


async def test_login_failure_does_not_reveal_whether_the_user_exists(relay_url: str) -> None:
    """Same code and sentence for a wrong password and a missing account."""
    await signed_up(relay_url, "alice")
    wire = await Wire.open(relay_url)
    wrong = await wire.call("login", username="alice", password="not the password")
    missing = await wire.call("login", username="nobody", password="not the password")
    assert wrong["code"] == missing["code"] == "unauthorized"
    assert wrong["message"] == missing["message"]


async def test_repeated_failed_logins_are_rate_limited(relay_url: str) -> None:
    """Brute force meets a growing back-off."""
    await signed_up(relay_url, "alice")
    wire = await Wire.open(relay_url)
    codes = [
        (await wire.call("login", username="alice", password=f"guess number {i}"))["code"]
        for i in range(8)
    ]
    assert codes[:5] == ["unauthorized"] * 5
    assert "rate_limited" in codes[5:]


async def test_session_token_resumes_without_password(relay_url: str) -> None:
    """A reconnect resumes with the token; logout revokes it."""
    wire = await Wire.open(relay_url)
    await wire.call(
        "register", username="alice", password=PASSWORD, recovery_token=b64(os.urandom(32))
    )
    session = await wire.call("login", username="alice", password=PASSWORD)
    second = await Wire.open(relay_url)
    resumed = await second.call("resume", token=session["token"])
    assert resumed["type"] == "session" and resumed["username"] == "alice"
    assert (await second.call("logout"))["type"] == "done"
    third = await Wire.open(relay_url)
    assert (await third.call("resume", token=session["token"]))["code"] == "unauthorized"


async def test_recovery_code_reset_is_single_use_and_revokes_sessions(relay_url: str) -> None:
    """The recovery token works once, needs a replacement, and logs every device out."""
    recovery = os.urandom(32)
    wire = await Wire.open(relay_url)
    await wire.call("register", username="alice", password=PASSWORD, recovery_token=b64(recovery))
    session = await wire.call("login", username="alice", password=PASSWORD)
    other = await Wire.open(relay_url)
    fresh = os.urandom(32)
    without_new = await other.call(
        "reset_password", username="alice", token=recovery.hex(), new_password="a new pass phrase"
    )
    assert without_new["code"] == "bad_request"
    done = await other.call(
        "reset_password",
        username="alice",
        token=recovery.hex(),
        new_password="a new pass phrase",
        new_recovery_token=b64(fresh),
    )
    assert done["type"] == "done"
    reused = await other.call(
        "reset_password",
        username="alice",
        token=recovery.hex(),
        new_password="another pass phrase",
        new_recovery_token=b64(os.urandom(32)),
    )
    assert reused["code"] == "unauthorized"
    assert (await (await Wire.open(relay_url)).call("resume", token=session["token"]))[
        "code"
    ] == "unauthorized"
    await logged_in(relay_url, "alice", "a new pass phrase")


async def test_operator_reset_token_from_the_command_line(relay: RelayServer) -> None:
    """`securechat-server reset-token` prints a token that resets the password once."""
    url = f"ws://127.0.0.1:{relay.port}"
    await signed_up(url, "alice")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "securechat.server.cli",
            "reset-token",
            "alice",
            "--data-dir",
            relay.config.data_dir,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip()
    assert token.startswith("op-")
    wire = await Wire.open(url)
    args = {"username": "alice", "token": token, "new_password": "operator set this one"}
    assert (await wire.call("reset_password", **args))["type"] == "done"
    assert (await wire.call("reset_password", **args))["code"] == "unauthorized"


async def test_delete_account_removes_data_and_tells_followers(relay: RelayServer) -> None:
    """Deletion needs the password, wipes the account and tells those who follow it."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    bob = await signed_up(url, "bob")
    await bob.call("send", to="alice", eid="x", body=b64(b"hello"))
    await alice.call("send", to="bob", eid="y", body=b64(b"hi"))
    await alice.call("watch", users=["bob"])
    assert (await bob.call("delete_account", password="wrong password!"))["code"] == "unauthorized"
    assert (await bob.call("delete_account", password=PASSWORD))["type"] == "done"
    notice = await alice.next_push("presence")
    assert notice == {"type": "presence", "user": "bob", "state": "deleted", "rid": None}
    assert await relay.store.get_account("bob") is None
    assert await relay.store.pending("bob", 0, 10) == []
    assert (await alice.call("send", to="bob", eid="z", body=b64(b"?")))["code"] == "not_found"
    fresh = await Wire.open(url)
    assert (await fresh.call("login", username="bob", password=PASSWORD))["code"] == "unauthorized"


async def test_a_name_registered_anew_inherits_no_queued_envelopes(relay: RelayServer) -> None:
    """Envelopes queued for a deleted account never reach whoever takes the name next."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    bob = await signed_up(url, "bob")
    await bob.close()
    await alice.call("send", to="bob", eid="for-old-bob", body=b64(b"x"))
    await relay.store.delete_account("bob")
    await relay.relay.drain()
    await alice.call("send", to="bob", eid="late", body=b64(b"x"))
    await relay.relay.drain()
    new_bob = await signed_up(url, "bob")
    with pytest.raises(TimeoutError):
        await new_bob.next_push("deliver", timeout=0.5)


async def test_a_login_that_replaces_a_session_ends_it(relay_url: str) -> None:
    """The device's previous session is revoked and its connection closed; others stay."""
    await signed_up(relay_url, "alice")
    old_device = await Wire.open(relay_url)
    old = await old_device.call("login", username="alice", password=PASSWORD)
    other_device = await Wire.open(relay_url)
    other = await other_device.call("login", username="alice", password=PASSWORD)
    again = await Wire.open(relay_url)
    new = await again.call("login", username="alice", password=PASSWORD, replaces=old["token"])
    assert new["type"] == "session" and new["token"] != old["token"]
    assert await old_device.closed_because() == "logged in again on this device"
    assert (await (await Wire.open(relay_url)).call("resume", token=old["token"]))[
        "code"
    ] == "unauthorized"
    resumed = await (await Wire.open(relay_url)).call("resume", token=other["token"])
    assert resumed["type"] == "session"
    assert (await again.call("watch", users=[]))["type"] == "presence_list"


async def test_a_login_cannot_end_another_users_session(relay_url: str) -> None:
    """`replaces` naming someone else's token (or none at all) ends nothing."""
    bob = await signed_up(relay_url, "bob")
    bob_session = await (await Wire.open(relay_url)).call(
        "login", username="bob", password=PASSWORD
    )
    await signed_up(relay_url, "alice")
    wire = await Wire.open(relay_url)
    answer = await wire.call(
        "login", username="alice", password=PASSWORD, replaces=bob_session["token"]
    )
    assert answer["type"] == "session"
    assert (await bob.call("watch", users=[]))["type"] == "presence_list"
    resumed = await (await Wire.open(relay_url)).call("resume", token=bob_session["token"])
    assert resumed["type"] == "session"
