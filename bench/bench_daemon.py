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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PASSWORD, REPO, Row, Server, log, memory_kib, row, scratch
from securechat.client.core import ChatClient
from securechat.client.events import ConversationChanged, ConversationState

NAME = "daemon"
IDLE_SECONDS = 5.0
LATENCY_SAMPLES = 8
PAUSES = [0.3 * i for i in range(LATENCY_SAMPLES)]
"""Seconds before each single message: spread over a poller's cycle (start, scrypt, 1 s)."""


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
    await asyncio.wait_for(_wait_state(bob, "alice"), 120)
    await bob.settle()
    await bob.close()
    return alice


async def _through_daemon(
    alice: ChatClient, socket_path: Path, count: int, tag: str
) -> tuple[float, list[float]]:
    """Messages/s for a burst of `count`, then the latency of single messages."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 22)
    writer.write(b'{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"after":0}}\n')
    await writer.drain()

    async def seen(wanted: set[str]) -> None:
        while wanted:
            note = json.loads(await asyncio.wait_for(reader.readline(), 120))
            if note.get("method") == "receive" and note["params"].get("type") == "message":
                wanted.discard(note["params"]["text"])

    started = time.perf_counter()
    for i in range(count):
        await alice.send_text("bob", f"{tag} {i}")
    await seen({f"{tag} {i}" for i in range(count)})
    rate = count / (time.perf_counter() - started)
    latencies = []
    for i, pause in enumerate(PAUSES):
        await asyncio.sleep(pause)
        sent = time.perf_counter()
        await alice.send_text("bob", f"{tag} single {i}")
        await seen({f"{tag} single {i}"})
        latencies.append(time.perf_counter() - sent)
    writer.close()
    return rate, latencies


async def _through_polling(
    alice: ChatClient, url: str, home: Path, count: int, tag: str
) -> tuple[float, list[float]]:
    """The same with a loop of `receive --wait 1 --json` runs as the consumer."""
    arrived: dict[str, float] = {}

    async def poll_forever() -> None:
        while True:
            proc = await asyncio.create_subprocess_exec(
                *_cli(url, home, "bob", "receive", "--wait", "1", "--json"),
                stdout=asyncio.subprocess.PIPE,
                env=_env(),
                cwd=REPO,
            )
            assert proc.stdout is not None
            try:
                async for line in proc.stdout:
                    event = json.loads(line)
                    if event.get("type") == "message":
                        arrived.setdefault(event["text"], time.perf_counter())
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    async def until(text: str) -> None:
        while text not in arrived:
            await asyncio.sleep(0.01)

    poller = asyncio.get_running_loop().create_task(poll_forever())
    try:
        started = time.perf_counter()
        for i in range(count):
            await alice.send_text("bob", f"{tag} {i}")
        await asyncio.wait_for(until(f"{tag} {count - 1}"), 300)
        missed = [i for i in range(count) if f"{tag} {i}" not in arrived]
        if missed:
            raise RuntimeError(f"polling missed {len(missed)} messages")
        rate = count / (max(arrived.values()) - started)
        latencies = []
        for i, pause in enumerate(PAUSES):
            await asyncio.sleep(pause)
            sent = time.perf_counter()
            await alice.send_text("bob", f"{tag} single {i}")
            await asyncio.wait_for(until(f"{tag} single {i}"), 120)
            latencies.append(arrived[f"{tag} single {i}"] - sent)
    finally:
        poller.cancel()
    return rate, latencies


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


async def _repeat(url: str, root: Path, count: int, index: int) -> dict[str, float]:
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
        rate, latencies = await _through_daemon(alice, socket_path, count, f"d{index}")
    finally:
        daemon.terminate()
        daemon.wait(30)
    poll_rate, poll_latencies = await _through_polling(alice, url, root / "bob", count, f"p{index}")
    await alice.close()
    figures = {
        "rate": rate,
        "poll_rate": poll_rate,
        "latency": 1000 * statistics.median(latencies),
        "poll_latency": 1000 * statistics.median(poll_latencies),
        "idle": idle_mib,
    }
    log(
        f"daemon {rate:.0f} msg/s, {figures['latency']:.0f} ms; polling {poll_rate:.1f} msg/s, "
        f"{figures['poll_latency']:.0f} ms; daemon idle {idle_mib:.1f} MiB"
    )
    return figures


def run(quick: bool = False) -> list[Row]:
    count = 50 if quick else 300
    repeats = 1 if quick else 3
    figures: list[dict[str, float]] = []
    tui: list[float] = []
    with scratch("daemon") as tmp:
        for i in range(repeats):
            log(f"repeat {i + 1}/{repeats}")
            with Server("relay", tmp / f"relay{i}") as relay:
                figures.append(asyncio.run(_repeat(relay.url, tmp / f"r{i}", count, i)))
                tui.append(_tui_rss(relay.url, tmp / f"tui{i}"))

    def column(name: str) -> list[float]:
        return [f[name] for f in figures]

    idle = column("idle")
    return [
        row(
            NAME,
            f"messages/s to a socket client (a burst of {count}) vs `receive --wait 1` polling",
            column("rate"),
            "msg/s",
            column("poll_rate"),
            digits=1,
            note="both bounded by alice's sending and bob's receipts, in the same process",
        ),
        row(
            NAME,
            f"one message, send to script sees it (median of {LATENCY_SAMPLES}) vs polling",
            column("latency"),
            "ms",
            column("poll_latency"),
            digits=0,
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
