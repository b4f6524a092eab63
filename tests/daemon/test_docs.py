"""docs/scripting.md's bot and shell one-liner run as written against a real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.client.events import MessageReceived
from securechat.daemon.server import Daemon, listen_unix
from tests.client.helpers import clients, secure, wait_for
from tests.conftest import REPO

DOC = (REPO / "docs" / "scripting.md").read_text()


def _block(language: str, after: str) -> str:
    """The first fenced `language` block after the heading `after`."""
    section = DOC[DOC.index(after) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


@pytest.fixture
async def alice_and_bobs_daemon(
    relay_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChatClient, Path]]:
    """alice, and bob served on `<XDG_RUNTIME_DIR>/securechat/bob.sock` as the doc says."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        daemon = Daemon(bob)
        daemon.start()
        runtime = tmp_path / "xdg"
        server = await listen_unix(daemon, runtime / "securechat" / "bob.sock")
        try:
            yield alice, runtime
        finally:
            server.close()
            await daemon.close()


async def test_the_echo_bot_runs_as_written(
    alice_and_bobs_daemon: tuple[ChatClient, Path], tmp_path: Path
) -> None:
    alice, runtime = alice_and_bobs_daemon
    script = tmp_path / "echo.py"
    code = _block("python", "## An echo bot in Python")
    assert len(code.strip().splitlines()) <= 25
    script.write_text(code)
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(runtime / "securechat" / "bob.sock"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await alice.send_text("bob", "ping")
        echo = await wait_for(alice, MessageReceived, timeout=20)
        assert isinstance(echo, MessageReceived) and echo.text == "echo: ping"
        assert echo.peer == "bob"
        assert bot.stdout is not None
        cursor = int(await asyncio.wait_for(bot.stdout.readline(), 10))
        assert cursor > 0
    finally:
        bot.kill()
        await bot.wait()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
async def test_the_socat_one_liner_sends(alice_and_bobs_daemon: tuple[ChatClient, Path]) -> None:
    alice, runtime = alice_and_bobs_daemon
    shell = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        _block("sh", "## From a shell"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    out, err = await asyncio.wait_for(shell.communicate(), 20)
    assert out, err
    assert "id" in json.loads(out)["result"]
    received = await wait_for(alice, MessageReceived, timeout=20)
    assert isinstance(received, MessageReceived) and received.text == "deploy done"
