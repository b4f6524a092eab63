"""Secrets never reach a log: passwords, tokens, keys, plaintext or who talks to whom."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.client.events import MessageReceived
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD, secure, wait_for
from tests.wire import Wire


async def test_no_secret_in_any_log_record(
    relay: RelayServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole session at DEBUG level: no record holds a secret or pairs the two users."""
    caplog.set_level(logging.DEBUG)
    url = f"ws://127.0.0.1:{relay.port}"
    alice = ChatClient(url, tmp_path / "a")
    bob = ChatClient(url, tmp_path / "b")
    await alice.connect()
    await bob.connect()
    code = await alice.register("alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    await secure(alice, bob)
    secret = "launch codes are 0000"
    await alice.send_text("bob", secret)
    await wait_for(bob, MessageReceived)
    token = await relay.accounts.issue_reset_token("alice")
    wrong = "wrong-" + PASSWORD
    # The test's raw wire client logs its frames at DEBUG; the product's client does not.
    caplog.set_level(logging.WARNING, logger="websockets.client")
    stranger = await Wire.open(url)
    assert (await stranger.call("login", username="alice", password=wrong))["type"] == "error"
    await stranger.close()
    await alice.close()
    await bob.close()
    text = "\n".join(
        record.getMessage() + " " + str(record.args) + " " + (record.exc_text or "")
        for record in caplog.records
    )
    for needle in (PASSWORD, wrong, secret, "launch", code, token, alice.relay.token or "??"):
        assert needle not in text
    assert "login failed from 127.0.0.1" in text  # the failed login is logged, without secrets
    assert not any("alice" in r.getMessage() for r in caplog.records if "failed" in r.getMessage())
    for record in caplog.records:
        if record.levelno >= logging.INFO and record.name.startswith("securechat"):
            message = record.getMessage()
            assert not ("alice" in message and "bob" in message), message
