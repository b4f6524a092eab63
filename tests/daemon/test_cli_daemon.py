"""`securechat-cli daemon` as a process: stdio mode, a password file, and its exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.client.helpers import PASSWORD, clients
from tests.daemon.helpers import RpcClient


async def _daemon(
    url: str, home: Path, *args: str, password: str | None = PASSWORD, before: tuple[str, ...] = ()
) -> asyncio.subprocess.Process:
    """`securechat-cli [before] daemon [args]` for bob; `before` holds global flags."""
    env = {k: v for k, v in os.environ.items() if k != "SECURECHAT_PASSWORD"}
    if password is not None:
        env["SECURECHAT_PASSWORD"] = password
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "securechat.client.cli",
        "--server",
        url,
        "--data-dir",
        str(home),
        "--user",
        "bob",
        *before,
        "daemon",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_stdio_answers_on_stdout_and_ends_with_stdin(relay_url: str, tmp_path: Path) -> None:
    """The password from --password-file; requests on stdin; EOF stops the daemon cleanly."""
    async with clients(relay_url, tmp_path, "bob"):
        pass
    secret = tmp_path / "pass"
    secret.write_text(PASSWORD + "\n")
    proc = await _daemon(
        relay_url,
        tmp_path / "bob",
        "--stdio",
        password=None,
        before=("--password-file", str(secret)),
    )
    request = b'{"jsonrpc":"2.0","id":1,"method":"listConversations"}\n'
    out, err = await asyncio.wait_for(proc.communicate(request), 60)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"jsonrpc": "2.0", "result": [], "id": 1}


async def test_exit_codes_mirror_the_cli(relay_url: str, tmp_path: Path) -> None:
    """A wrong password exits 4; TCP beyond loopback or without a token exits 2."""
    async with clients(relay_url, tmp_path, "bob"):
        pass
    wrong = await _daemon(relay_url, tmp_path / "bob", "--stdio", password="not the password")
    _, err = await asyncio.wait_for(wrong.communicate(b""), 60)
    assert wrong.returncode == 4, err
    for where in ("0.0.0.0:7583", "127.0.0.1:7583"):
        tcp = await _daemon(relay_url, tmp_path / "bob", "--tcp", where)
        _, err = await asyncio.wait_for(tcp.communicate(b""), 60)
        assert tcp.returncode == 2, err


async def test_sigterm_stops_the_daemon_and_removes_its_socket(
    relay_url: str, tmp_path: Path
) -> None:
    async with clients(relay_url, tmp_path, "bob"):
        pass
    path = tmp_path / "run" / "bob.sock"
    proc = await _daemon(relay_url, tmp_path / "bob", "--socket", str(path))
    client = await RpcClient.unix(path)
    assert (await client.call("version"))["version"]
    await client.close()
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert not path.exists()
