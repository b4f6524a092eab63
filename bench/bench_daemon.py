"""The scripting daemon: how fast it hands messages to a script, and what it costs idle.

Throughput: alice (in this process) sends N messages to bob; the clock runs
from her first send to the moment the consumer has seen the last one. The
consumer is either a socket client subscribed to bob's `securechat-cli daemon`
or, the baseline measured in the same repeat, a loop of
`securechat-cli receive --wait 1 --json` (what a script does without the
daemon: each run pays process start, scrypt and a login).

Memory: the daemon's VmRSS after it unlocked, connected and sat idle for a few
seconds, against the TUI's (`securechat-tui` on a pseudo-terminal, idle on its
sign-in screen: a lower bound for the TUI, which grows once a user signs in).

Run: .venv/bin/python -m bench daemon
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PASSWORD, REPO, Row, Server, log, memory_kib, row, scratch
from securechat.client.core import ChatClient
from securechat.client.events import ConversationChanged, ConversationState

NAME = "daemon"
IDLE_SECONDS = 5.0


def _cli(url: str, home: Path, user: str, *args: str) -> list[str]:
    base = [sys.executable, "-m", "securechat.client.cli", "--server", url]
    return [*base, "--data-dir", str(home), "--user", user, *args]


def _env() -> dict[str, str]:
    return {**os.environ, "SECURECHAT_PASSWORD": PASSWORD}


async def _wait_state(client: ChatClient, peer: str) -> None:
    while True:
        event = await client.events.get()
        if (
            isinstance(event, ConversationChanged)
            and event.peer == peer
            and event.state == ConversationState.ACTIVE
        ):
            return


async def _pair(url: str, root: Path) -> ChatClient:
    """alice and bob with a session; returns alice connected, bob's vault closed."""
    alice, bob = ChatClient(url, root / "alice"), ChatClient(url, root / "bob")
    for client, name in ((alice, "alice"), (bob, "bob")):
        await client.connect()
        await client.register(name, PASSWORD)
    await alice.sharekey("bob")
    await bob.sharekey("alice")
    await asyncio.sleep(0.5)
    await alice.talk("bob")
    await asyncio.wait_for(_wait_state(bob, "alice"), 30)
    await bob.settle()
    await bob.close()
    return alice


async def _through_daemon(alice: ChatClient, socket_path: Path, count: int, tag: str) -> float:
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 22)
    writer.write(b'{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"after":0}}\n')
    await writer.drain()
    wanted = {f"{tag} {i}" for i in range(count)}
    started = time.perf_counter()
    for i in range(count):
        await alice.send_text("bob", f"{tag} {i}")
    while wanted:
        note = json.loads(await asyncio.wait_for(reader.readline(), 60))
        if note.get("method") == "receive" and note["params"].get("type") == "message":
            wanted.discard(note["params"]["text"])
    elapsed = time.perf_counter() - started
    writer.close()
    return count / elapsed


async def _through_polling(alice: ChatClient, url: str, home: Path, count: int, tag: str) -> float:
    wanted = {f"{tag} {i}" for i in range(count)}
    started = time.perf_counter()
    for i in range(count):
        await alice.send_text("bob", f"{tag} {i}")
    deadline = started + 300
    while wanted and time.perf_counter() < deadline:
        proc = await asyncio.create_subprocess_exec(
            *_cli(url, home, "bob", "receive", "--wait", "1", "--json"),
            stdout=asyncio.subprocess.PIPE,
            env=_env(),
            cwd=REPO,
        )
        out, _ = await proc.communicate()
        for line in out.splitlines():
            event = json.loads(line)
            if event.get("type") == "message":
                wanted.discard(event["text"])
    if wanted:
        raise RuntimeError(f"polling missed {len(wanted)} messages")
    return count / (time.perf_counter() - started)


def _tui_rss(url: str, home: Path) -> float:
    """MiB of an idle TUI on a pseudo-terminal (its sign-in screen)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(
            sys.executable,
            [sys.executable, "-m", "securechat.tui.cli", "--server", url, "--data-dir", str(home)],
        )
    try:
        deadline = time.monotonic() + IDLE_SECONDS + 5
        while time.monotonic() < deadline:
            try:
                os.read(fd, 65536)  # keep the terminal drained while it draws
            except OSError:
                break
            time.sleep(0.05)
        return memory_kib(pid) / 1024
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


async def _repeat(url: str, root: Path, count: int, index: int) -> tuple[float, float, float]:
    alice = await _pair(url, root)
    socket_path = root / "bob.sock"
    daemon = subprocess.Popen(
        [*_cli(url, root / "bob", "bob", "daemon", "--socket", str(socket_path))],
        env=_env(),
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if socket_path.exists():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(IDLE_SECONDS)
        idle_mib = memory_kib(daemon.pid) / 1024
        rate = await _through_daemon(alice, socket_path, count, f"d{index}")
    finally:
        daemon.terminate()
        daemon.wait(30)
    baseline = await _through_polling(alice, url, root / "bob", count, f"p{index}")
    await alice.close()
    log(f"daemon {rate:.0f} msg/s, polling {baseline:.1f} msg/s, daemon idle {idle_mib:.1f} MiB")
    return rate, baseline, idle_mib


def run(quick: bool = False) -> list[Row]:
    count = 50 if quick else 300
    repeats = 1 if quick else 3
    rates: list[float] = []
    polls: list[float] = []
    idle: list[float] = []
    tui: list[float] = []
    with scratch("daemon") as tmp:
        for i in range(repeats):
            log(f"repeat {i + 1}/{repeats}")
            with Server("relay", tmp / f"relay{i}") as relay:
                rate, poll, mib = asyncio.run(_repeat(relay.url, tmp / f"r{i}", count, i))
                rates.append(rate)
                polls.append(poll)
                idle.append(mib)
                tui.append(_tui_rss(relay.url, tmp / f"tui{i}"))
    return [
        row(
            NAME,
            f"messages/s to a socket client ({count} sent) vs `receive --wait 1` polling",
            rates,
            "msg/s",
            polls,
            digits=1,
        ),
        row(
            NAME,
            "idle RSS of the daemon (unlocked, connected) vs the idle TUI (sign-in screen)",
            idle,
            "MiB",
            tui,
            target="< 60 MiB",
            met=sorted(idle)[len(idle) // 2] < 60,
            digits=1,
        ),
    ]
