"""A bot's view: every message alice sends reaches the socket client once, in order, through
a relay restart and a daemon restart (the client resumes from its cursor)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from securechat.client.core import ChatClient
from tests.client.helpers import PASSWORD, secure
from tests.daemon.helpers import RpcClient
from tests.procs import RelayProcess


class DaemonProcess:
    """`securechat-cli daemon` for one user, as a bot would run it."""

    def __init__(self, url: str, data_dir: Path, user: str, socket_path: Path) -> None:
        self.args = [
            sys.executable,
            "-m",
            "securechat.client.cli",
            "--server",
            url,
            "--data-dir",
            str(data_dir),
            "--user",
            user,
            "daemon",
            "--socket",
            str(socket_path),
        ]
        self.env = {**os.environ, "SECURECHAT_PASSWORD": PASSWORD}
        self.log = data_dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, env=self.env)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


async def _bot_run(tmp_path: Path, total: int) -> None:
    relay = RelayProcess(tmp_path / "relay").start()
    socket_path = tmp_path / "run" / "bob.sock"
    alice = ChatClient(relay.url, tmp_path / "alice")
    alice.relay.backoff_base = 0.05
    daemon: DaemonProcess | None = None
    bot: RpcClient | None = None
    try:
        bob = ChatClient(relay.url, tmp_path / "bob")
        for client, name in ((alice, "alice"), (bob, "bob")):
            await client.connect()
            await client.register(name, PASSWORD)
        await secure(alice, bob)
        await bob.settle()
        await bob.close()

        daemon = DaemonProcess(relay.url, tmp_path / "bob", "bob", socket_path).start()
        bot = await RpcClient.unix(socket_path)
        await bot.call("subscribe", after=0)
        got: list[dict[str, Any]] = []
        third = total // 3

        # 1. Plain delivery.
        for i in range(third):
            await alice.send_text("bob", f"m{i}")
        got += await bot.messages(third, timeout=60)

        # 2. The relay restarts while alice keeps typing (her outbox holds what it missed).
        relay.kill()
        for i in range(third, 2 * third):
            await alice.send_text("bob", f"m{i}")
        relay.start()
        got += await bot.messages(third, timeout=60)

        # 3. The daemon dies mid-stream (SIGKILL); a new one resumes from the bot's cursor.
        for i in range(2 * third, total):
            await alice.send_text("bob", f"m{i}")
        got += await bot.messages(10, timeout=60)
        daemon.kill()
        await bot.close()
        daemon = DaemonProcess(relay.url, tmp_path / "bob", "bob", socket_path).start()
        bot = await RpcClient.unix(socket_path)
        await bot.call("subscribe", after=got[-1]["id"])
        got += await bot.messages(total - len(got), timeout=60)

        assert [m["text"] for m in got] == [f"m{i}" for i in range(total)]
        ids = [m["id"] for m in got]
        assert ids == sorted(set(ids))
        assert all(m["from"] == "alice" for m in got)
        with pytest.raises(TimeoutError):  # and nothing twice after the last one
            await bot.messages(1, timeout=1.5)
    finally:
        if bot is not None:
            await bot.close()
        if daemon is not None:
            daemon.kill()
        await alice.close()
        relay.kill()


async def test_a_bot_gets_every_message_once_in_order(tmp_path: Path) -> None:
    await _bot_run(tmp_path, 200)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_bot_gets_a_thousand_messages_once_in_order(tmp_path: Path) -> None:
    await _bot_run(tmp_path, 1000)
